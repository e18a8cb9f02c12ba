package store

import (
	"bytes"
	"crypto/x509"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// leafEntry is one leaf certificate of a leaf directory with every file that holds it as first
// certificate: files with only the leaf ("single") and chain files (leaf, then its sub-CAs).
type leafEntry struct {
	lt     LeafType
	cert   *x509.Certificate
	fp     certs.Fingerprint
	single []*certFile
	chains []*certFile
}

// firstFile is the file a leaf is known by: its single file, else its chain file.
func (e *leafEntry) firstFile() *certFile {
	if len(e.single) > 0 {
		return e.single[0]
	}
	return e.chains[0]
}

// holds reports whether the certificate fp is in one of the leaf's files: the leaf itself or a
// certificate of one of its chain files.
func (e *leafEntry) holds(fp certs.Fingerprint) bool {
	if e.fp == fp {
		return true
	}
	for _, f := range e.chains {
		for _, c := range f.certs {
			if certs.FingerprintOf(c) == fp {
				return true
			}
		}
	}
	return false
}

// chainFile is the chain file consumers get: the longest one (ties: the first by name).
func (e *leafEntry) chainFile() *certFile {
	var best *certFile
	for _, f := range e.chains {
		if best == nil || len(f.certs) > len(best.certs) {
			best = f
		}
	}
	return best
}

// intermediates are the certificates after the leaf in its chain file.
func (e *leafEntry) intermediates() []*x509.Certificate {
	if f := e.chainFile(); f != nil {
		return f.certs[1:]
	}
	return nil
}

// leafSet is the content of one leaf type's directories. It is shared by concurrent readers and
// never changed after it is built, except for its memos, which have their own lock.
type leafSet struct {
	lt      LeafType
	certDir string
	keyDir  string
	files   []*certFile
	entries []*leafEntry

	memoMu    sync.Mutex
	memos     []*selectionMemo
	ocspReq   *ocspRequestMemo
	interOnce sync.Once
	inter     *certs.Pool

	// kinds are the views of a SECC leaf set per leaf type (V2G, V2G20), made once; see
	// kindLeaves.
	kindsOnce sync.Once
	kinds     map[LeafType]*leafSet
	// parent is the whole directory's set of a kind view (nil otherwise): the views share its
	// files, and so its pool of their sub-CAs.
	parent *leafSet
}

// readLeaves returns the leaf directory of lt, from memory while it has not changed: every leaf
// of the directory (for V2G and V2G20 the same set, both kinds of SECC leaf). Selections use
// kindLeaves instead.
func (s *Store) readLeaves(lt LeafType) *leafSet { return s.cachedLeaves(lt.dirType()) }

// buildLeaves loads the leaf directory of lt. Only the first certificate of each file is a leaf
// candidate; further certificates are the leaf's chain.
func (s *Store) buildLeaves(lt LeafType) *leafSet {
	certDir, keyDir, ok := s.cfg.LeafDirs(lt)
	ls := &leafSet{lt: lt, certDir: certDir, keyDir: keyDir}
	if !ok {
		return ls
	}
	paths, err := s.listDir(certDir)
	if err != nil {
		s.log.Warn("cannot list leaf directory", "type", lt, "path", certDir, "err", err)
	}
	ls.files = s.loadLeafFiles(s.dropAliases(paths))
	byFP := map[certs.Fingerprint]*leafEntry{}
	for _, f := range ls.files {
		if len(f.certs) == 0 {
			continue
		}
		fp := certs.FingerprintOf(f.certs[0])
		e := byFP[fp]
		if e == nil {
			e = &leafEntry{lt: lt, cert: f.certs[0], fp: fp}
			byFP[fp] = e
			ls.entries = append(ls.entries, e)
		}
		if len(f.certs) == 1 {
			e.single = append(e.single, f)
		} else {
			e.chains = append(e.chains, f)
		}
	}
	sortNewestFirst(ls.entries)
	return ls
}

// sortNewestFirst orders leaves by notAfter, latest first; ties by notBefore (latest first),
// then by fingerprint, so the choice never depends on directory order.
func sortNewestFirst(es []*leafEntry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].cert, es[j].cert
		if !a.NotAfter.Equal(b.NotAfter) {
			return a.NotAfter.After(b.NotAfter)
		}
		if !a.NotBefore.Equal(b.NotBefore) {
			return a.NotBefore.After(b.NotBefore)
		}
		return bytes.Compare(es[i].fp[:], es[j].fp[:]) < 0
	})
}

// validity classifies a certificate at time now.
type validity int

const (
	validNow validity = iota
	notYetValid
	expired
)

func validityAt(c *x509.Certificate, now time.Time) validity {
	switch {
	case now.After(c.NotAfter):
		return expired
	case now.Before(c.NotBefore):
		return notYetValid
	}
	return validNow
}

// verifyLeaf verifies a leaf against its type's domain with the intermediates of its chain file
// and of the leaf directory, and returns the verified chain (leaf first, anchor last).
func (s *Store) verifyLeaf(v *caView, ls *leafSet, e *leafEntry, now time.Time, allowFuture bool) ([]*x509.Certificate, error) {
	return certs.Verify(e.cert, certs.VerifyOptions{
		Trusted:          v.domainPool(ls.lt.Domain()),
		IntermediatePool: ls.intermediatePool(),
		Time:             now,
		AllowFutureLeaf:  allowFuture,
	})
}

// hashPool is a pool that can compute the hash data of any certificate the store holds: every
// CA certificate and every certificate of the given leaf sets. It is kept per (view, sets), which
// are themselves kept while nothing changes, so a warm query builds no pool.
func (s *Store) hashPool(v *caView, sets ...*leafSet) *certs.Pool {
	key := hashPoolKey{v: v}
	for i, ls := range sets {
		if i < len(key.sets) {
			key.sets[i] = ls
		}
	}
	if len(sets) <= len(key.sets) {
		s.views.mu.Lock()
		p, ok := s.views.hashPools[key]
		s.views.mu.Unlock()
		if ok {
			return p
		}
	}
	files := []*certFile{}
	for _, t := range CATypes {
		files = append(files, v.bundles[t].files...)
	}
	for _, ls := range sets {
		files = append(files, ls.files...)
	}
	p := s.pools.get(files)
	if len(sets) <= len(key.sets) {
		s.views.mu.Lock()
		if s.views.hashPools == nil || len(s.views.hashPools) > 16 {
			s.views.hashPools = map[hashPoolKey]*certs.Pool{}
		}
		s.views.hashPools[key] = p
		s.views.mu.Unlock()
	}
	return p
}

// leafChains lists the station's SECC leaves as V2GCertificateChain entries: every leaf of the
// SECC directory, expired and future ones too, with its sub-CAs leaf first (the root is not
// part of the chain).
func (s *Store) leafChains(v *caView, ls *leafSet) []HashDataChain {
	pool := s.hashPool(v, ls)
	out := make([]HashDataChain, 0, len(ls.entries))
	// Leaves of one issuer have the same sub-CAs above them: their lists are made once and
	// shared (the answer is kept and never modified), which keeps a kept answer of 2,000 leaves
	// small. A path that runs into its own leaf (a leaf that signed a CA above it) depends on
	// the leaf and is not shared.
	type shared struct {
		path []*x509.Certificate
		subs []certs.HashData
	}
	byIssuer := map[*x509.Certificate]shared{}
	for _, e := range ls.entries {
		h, ok := pool.HashData(e.cert, certs.SHA256)
		if !ok {
			s.log.Warn("SECC leaf without a known issuer cannot be listed", "leaf", describe(e.cert))
			continue
		}
		issuer := pool.Issuer(e.cert)
		sh, ok := byIssuer[issuer]
		if !ok || slices.Contains(sh.path, e.cert) {
			path, hitLeaf := issuerPath(pool, e.cert)
			sh = shared{path: path, subs: []certs.HashData{}}
			for _, sub := range path {
				if hd, ok := pool.HashData(sub, certs.SHA256); ok {
					sh.subs = append(sh.subs, hd)
				}
			}
			if !hitLeaf && !ok {
				byIssuer[issuer] = sh
			}
		}
		out = append(out, HashDataChain{CertificateType: V2GCertificateChain, HashData: h, Children: sh.subs})
	}
	return out
}

// issuerPath walks up from c through the pool's first issuers and returns the CAs above c,
// nearest first, without the self-signed root at the top. hitStart says the walk ended because
// it came back to c.
func issuerPath(pool *certs.Pool, c *x509.Certificate) (path []*x509.Certificate, hitStart bool) {
	start := certs.FingerprintOf(c)
	seen := map[certs.Fingerprint]bool{start: true}
	for cur := c; ; {
		is := pool.Issuer(cur)
		if is == nil || pool.IsSelfSigned(is) {
			return path, false
		}
		fp := certs.FingerprintOf(is)
		if seen[fp] {
			return path, fp == start
		}
		seen[fp] = true
		path = append(path, is)
		cur = is
	}
}
