package store

import (
	"crypto/x509"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// deleteLeaf deletes the station leaf named by h as a unit: its single and chain files, its key
// (unless another remaining certificate uses the same key) and its OCSP responses, nothing else.
// The station's current CSMS leaf, and the not yet valid one that will take over from it, are
// refused with Failed before anything is touched (OCPP 2.0.1 M04.FR.06), also when the hash names
// a copy of one in the SECC directory (the reference deleted the SECC files first and then
// answered Failed). A hash that only names a sub-CA inside a leaf's chain file is Failed too:
// that sub-CA is deleted by deleting its leaf.
func (s *Store) deleteLeaf(v *caView, h certs.HashData) (DeleteResult, []Event) {
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	pool := s.hashPool(v, sets...)
	protected := s.stationCertificates(v, sets[1], s.now())
	type target struct {
		ls *leafSet
		e  *leafEntry
	}
	var targets []target
	subCA := false
	for _, ls := range sets {
		for _, e := range ls.entries {
			if hc, ok := pool.HashData(e.cert, h.Algorithm); ok && hc.Equal(h) {
				targets = append(targets, target{ls, e})
			}
		}
		if ls.certDir == sets[0].certDir && ls != sets[0] {
			// One directory for both types: its files were matched above already, as the
			// other type's; the leaf is deleted once, under the type it belongs to.
			continue
		}
		for _, f := range ls.files {
			for _, c := range f.certs[min(1, len(f.certs)):] {
				if hc, ok := pool.HashData(c, h.Algorithm); ok && hc.Equal(h) {
					subCA = true
				}
			}
		}
	}
	if len(targets) == 0 {
		if subCA {
			s.log.Warn("delete_certificate: the hash names a sub-CA of a leaf chain; delete the leaf instead")
			return DeleteFailed, nil
		}
		return DeleteNotFound, nil
	}
	for _, t := range targets {
		if why, ok := protected[t.e.fp]; ok {
			s.log.Warn("delete_certificate refused: the certificate is the station's "+why+" (OCPP 2.0.1 M04.FR.06)", "leaf", describe(t.e.cert))
			return DeleteFailed, nil
		}
	}
	targets = dedupeSharedDir(targets, func(t target) (string, certs.Fingerprint) { return t.ls.certDir, t.e.fp },
		func(t target) bool { return s.chainsToDomain(v, pool, t.e.cert, t.ls.lt) })
	deleted := map[certs.Fingerprint]bool{}
	for _, t := range targets {
		deleted[t.e.fp] = true
	}
	var events []Event
	failed := false
	for _, t := range targets {
		if err := s.removeLeafUnit(sets, t.ls, t.e, deleted); err != nil {
			s.log.Error("delete_certificate: removing leaf failed", "leaf", describe(t.e.cert), "err", err)
			failed = true
			continue
		}
		events = append(events, Event{Kind: EventDelete, Operation: OperationDeleted, LeafType: t.ls.typeOf(t.e), Path: t.e.firstFile().path})
	}
	s.updateLinksLocked()
	if failed {
		return DeleteFailed, events
	}
	return DeleteAccepted, events
}

// stationCertificates are the CSMS leaves OCPP 2.0.1 M04.FR.06 keeps from deletion, with what
// they are: the one in use at now, and the next one — the leaf that becomes the one in use at the
// first later moment the choice changes (a leaf starting, or the current one ending), when it is
// not valid yet. That one was signed by the CSMS for this station (a renewal installed ahead of
// time) and is its certificate from its start on; deleting it would leave the station, once the
// current leaf ends, without a certificate to reach the CSMS with. Other CSMS leaves (older ones,
// future ones that never become the choice) can be deleted.
func (s *Store) stationCertificates(v *caView, ls *leafSet, now time.Time) map[certs.Fingerprint]string {
	out := map[certs.Fingerprint]string{}
	var current certs.Fingerprint
	if sel, st := s.selectLeaves(v, ls, now, false); st == InfoAccepted {
		current = sel[0].e.fp
		out[current] = "current CSMS leaf"
	}
	var moments []time.Time
	for _, e := range ls.entries {
		if e.cert.NotBefore.After(now) {
			moments = append(moments, e.cert.NotBefore)
		}
		if e.fp == current {
			moments = append(moments, e.cert.NotAfter.Add(time.Second))
		}
	}
	slices.SortFunc(moments, time.Time.Compare)
	for _, t := range moments {
		sel, st := s.selectLeavesAt(v, ls, t, false)
		if st != InfoAccepted || sel[0].e.fp == current {
			continue
		}
		if sel[0].e.cert.NotBefore.After(now) {
			out[sel[0].e.fp] = "next CSMS leaf (in use from " + sel[0].e.cert.NotBefore.UTC().Format(time.RFC3339) + ")"
		}
		break
	}
	return out
}

// removeLeafUnit removes a leaf's files, the DER copies made of them for DER queries, its OCSP
// responses and its key. The key stays when a leaf that is not being removed (in any leaf
// directory) has the same public key.
func (s *Store) removeLeafUnit(sets []*leafSet, ls *leafSet, e *leafEntry, removing map[certs.Fingerprint]bool) error {
	// Everything that goes: the leaf's files and their DER copies (the key copy is a private key
	// and must not outlive its leaf). They are read first, so that a failure half-way can put
	// back what was already removed: the leaf is deleted as a unit or not at all.
	var paths []string
	for _, f := range append(append([]*certFile{}, e.single...), e.chains...) {
		paths = append(paths, f.path)
		stem := strings.TrimSuffix(filepath.Base(f.path), filepath.Ext(f.path))
		derDir := filepath.Join(filepath.Dir(f.path), derDirName)
		for _, suffix := range []string{".der", ".chain.der", ".key.der"} {
			if _, err := s.fs.Lstat(filepath.Join(derDir, stem+suffix)); err == nil {
				paths = append(paths, filepath.Join(derDir, stem+suffix))
			}
		}
	}
	type saved struct {
		path string
		data []byte
		perm fs.FileMode
	}
	var removed []saved
	restore := func(cause error) error {
		for _, r := range removed {
			if err := writeAtomic(s.fs, r.path, r.data, r.perm, 0o755); err != nil {
				s.log.Error("cannot put back a file of a leaf whose deletion failed", "path", r.path, "err", err)
			}
		}
		return cause
	}
	for _, p := range paths {
		fi, err := s.fs.Stat(p)
		if err != nil {
			return restore(err)
		}
		data, err := s.fs.ReadFile(p)
		if err != nil {
			return restore(err)
		}
		if err := removeDurable(s.fs, p); err != nil {
			return restore(err)
		}
		removed = append(removed, saved{p, data, fi.Mode().Perm()})
	}
	if kl := s.findKey(e.cert, e.firstFile().path, ls.keyDir); kl.key != nil && !keyUsedElsewhere(sets, kl.key, removing, s) {
		s.forgetPending(kl.key.path)
		// Last, because a hardware key cannot be put back once its token deleted it.
		if err := s.removeKeyFile(kl.key.path); err != nil {
			return restore(err)
		}
	}
	for _, f := range append(append([]*certFile{}, e.single...), e.chains...) {
		s.removeOCSPFor(f.path, e.cert)
	}
	return nil
}

// keyUsedElsewhere reports whether a leaf that stays (in any leaf directory) has key's public key.
func keyUsedElsewhere(sets []*leafSet, key *keyFile, removing map[certs.Fingerprint]bool, s *Store) bool {
	for _, other := range sets {
		for _, oe := range other.entries {
			if !removing[oe.fp] && keys.Fingerprint(oe.cert.PublicKey) == key.fp {
				s.log.Info("key kept: another leaf uses it", "key", key.path, "leaf", describe(oe.cert))
				return true
			}
		}
	}
	return false
}

// dedupeSharedDir keeps one of the items that name the same leaf file twice (the CSMS and SECC
// leaf directories are one directory, so the leaf was found as both types): the first whose type
// the leaf belongs to (belongs), else the first.
func dedupeSharedDir[T any](items []T, key func(T) (string, certs.Fingerprint), belongs func(T) bool) []T {
	type k struct {
		dir string
		fp  certs.Fingerprint
	}
	chosen := map[k]int{}
	var out []T
	for _, it := range items {
		d, fp := key(it)
		i, seen := chosen[k{d, fp}]
		switch {
		case !seen:
			chosen[k{d, fp}] = len(out)
			out = append(out, it)
		case !belongs(out[i]) && belongs(it):
			out[i] = it
		}
	}
	return out
}

// chainsToDomain reports whether c chains, by name, key identifier and signature and whatever
// the time, to a certificate of lt's trust domain: the type a leaf belongs to when both types
// share a directory.
func (s *Store) chainsToDomain(v *caView, pool *certs.Pool, c *x509.Certificate, lt LeafType) bool {
	domain := v.domainPool(lt.Domain())
	seen := map[certs.Fingerprint]bool{}
	var walk func(c *x509.Certificate) bool
	walk = func(c *x509.Certificate) bool {
		for _, is := range pool.Issuers(c) {
			fp := certs.FingerprintOf(is)
			if seen[fp] {
				continue
			}
			seen[fp] = true
			if domain.Contains(is) || walk(is) {
				return true
			}
		}
		return false
	}
	return walk(c)
}
