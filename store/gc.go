package store

import (
	"sync"

	"github.com/evsesec/evsesec/certs"
)

// GCReport says what a garbage collection run removed.
type GCReport struct {
	// ExpiredCSRKeys are keys of CSRs never answered within CSRExpiry.
	ExpiredCSRKeys []string `json:"expired_csr_keys"`
	// RemovedLeaves are files of expired leaves pruned because the store was over a limit.
	RemovedLeaves []string `json:"removed_leaves"`
	// RemovedOCSP are OCSP responses whose certificate is gone or that are past nextUpdate.
	RemovedOCSP []string `json:"removed_ocsp"`
	// RemovedTempFiles are temporary files of writes a crash interrupted.
	RemovedTempFiles []string `json:"removed_temp_files"`
}

// GarbageCollect cleans the store. On every run: keys that no certificate matches are tracked as
// pending CSR keys (after a restart their age starts again, so a pending key survives it), and
// those pending longer than CSRExpiry are deleted; OCSP responses of certificates that are gone or
// past their nextUpdate are deleted. Only when the store is over a limit: expired leaves beyond
// the newest MinKeptLeaves of each type are deleted with their key and OCSP files. A key is only
// ever deleted when no certificate of the store matches it; a key that cannot be read
// (wrong password, unsupported format) is never deleted (the reference's defect 3).
func (s *Store) GarbageCollect() GCReport {
	return write(s, "garbage collection", GCReport{}, func() (GCReport, []Event) {
		rep, events := s.garbageCollect()
		s.gcStats.add(rep)
		return rep, events
	}).nonNil()
}

// GCStats are the totals of the garbage collection runs of a store since it was opened: by the
// maintenance loop, the garbage_collect command and `evsesec gc` alike.
type GCStats struct {
	Runs             uint64
	ExpiredCSRKeys   uint64
	RemovedLeaves    uint64
	RemovedOCSP      uint64
	RemovedTempFiles uint64
}

// gcCounters holds the GCStats of a store.
type gcCounters struct {
	mu sync.Mutex
	st GCStats
}

func (c *gcCounters) add(r GCReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Runs++
	c.st.ExpiredCSRKeys += uint64(len(r.ExpiredCSRKeys))
	c.st.RemovedLeaves += uint64(len(r.RemovedLeaves))
	c.st.RemovedOCSP += uint64(len(r.RemovedOCSP))
	c.st.RemovedTempFiles += uint64(len(r.RemovedTempFiles))
}

// GCStats returns the totals of the garbage collection runs since Open.
func (s *Store) GCStats() GCStats {
	s.gcStats.mu.Lock()
	defer s.gcStats.mu.Unlock()
	return s.gcStats.st
}

// nonNil gives the report empty lists instead of nil ones, so its JSON (garbage_collect) always
// has its four arrays.
func (r GCReport) nonNil() GCReport {
	for _, l := range []*[]string{&r.ExpiredCSRKeys, &r.RemovedLeaves, &r.RemovedOCSP, &r.RemovedTempFiles} {
		if *l == nil {
			*l = []string{}
		}
	}
	return r
}

func (s *Store) garbageCollect() (GCReport, []Event) {
	var rep GCReport
	var events []Event
	v := s.readCAs()
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	if full, why := s.isFull(); full {
		s.log.Info("garbage collection: store over its limit, pruning expired leaves", "why", why)
		rep.RemovedLeaves, events = s.pruneExpiredLeaves(v, sets)
		if len(events) > 0 {
			sets = []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
		}
	}
	rep.ExpiredCSRKeys = s.expireCSRKeys(v, sets)
	var ocspEvents []Event
	rep.RemovedOCSP, ocspEvents = s.sweepOCSP(v, sets)
	rep.RemovedTempFiles = s.removeStaleTempFiles()
	if len(events) > 0 {
		s.updateLinksLocked()
	}
	return rep, append(events, ocspEvents...)
}

// pruneExpiredLeaves deletes, for each leaf type, the expired leaves that are not among its
// newest MinKeptLeaves. The victims of both types are chosen first, so a key shared by two
// victims goes and a key shared with any leaf that stays is kept. A directory shared by both
// types is pruned once.
func (s *Store) pruneExpiredLeaves(v *caView, sets []*leafSet) ([]string, []Event) {
	now := s.now()
	var removed []string
	var events []Event
	removing := map[certs.Fingerprint]bool{}
	type victim struct {
		ls *leafSet
		e  *leafEntry
	}
	var victims []victim
	seenDir := map[string]bool{}
	for _, ls := range sets {
		if seenDir[ls.certDir] {
			continue
		}
		seenDir[ls.certDir] = true
		pool := s.hashPool(v, ls)
		// The newest MinKeptLeaves are counted per leaf type, so -20 leaves in the SECC
		// directory never push -2 ones out of the kept set, or the other way round.
		seen := map[LeafType]int{}
		for _, e := range ls.entries {
			i := seen[ls.typeOf(e)]
			seen[ls.typeOf(e)]++
			if i < s.cfg.MinKeptLeaves || validityAt(e.cert, now) != expired {
				continue
			}
			removing[e.fp] = true
			owner := ls
			for _, other := range sets {
				// A directory shared by both types: the leaf is reported under its own type.
				if other != ls && other.certDir == ls.certDir && !s.chainsToDomain(v, pool, e.cert, ls.lt) &&
					s.chainsToDomain(v, pool, e.cert, other.lt) {
					owner = other
				}
			}
			victims = append(victims, victim{owner, e})
		}
	}
	for _, vi := range victims {
		ls, e := vi.ls, vi.e
		if err := s.removeLeafUnit(sets, ls, e, removing); err != nil {
			s.log.Error("garbage collection: cannot remove expired leaf", "leaf", describe(e.cert), "err", err)
			continue
		}
		for _, f := range append(append([]*certFile{}, e.single...), e.chains...) {
			removed = append(removed, f.path)
		}
		s.log.Info("garbage collection: removed expired leaf", "type", ls.lt, "leaf", describe(e.cert))
		events = append(events, Event{Kind: EventGC, Operation: OperationDeleted, LeafType: ls.typeOf(e), Path: e.firstFile().path})
	}
	return removed, events
}

// expireCSRKeys adopts keys without a certificate as pending and deletes those pending for longer
// than CSRExpiry. A key belongs to a certificate when any certificate of the store (CA bundles
// included) has its public key; such a key is never pending.
func (s *Store) expireCSRKeys(v *caView, sets []*leafSet) []string {
	inUse := s.certificateKeys(v, sets)
	now := s.now()
	var expiredKeys []string
	seenDir := map[string]bool{}
	seenKey := map[string]bool{}
	for _, ls := range sets {
		if seenDir[ls.keyDir] {
			continue
		}
		seenDir[ls.keyDir] = true
		for _, k := range s.listKeys(ls.keyDir) {
			seenKey[k.path] = true
			if k.err != nil {
				s.log.Warn("key file cannot be read; it is kept", "key", k.path, "err", k.err)
				continue
			}
			if inUse[k.fp] {
				s.pending.remove(k.path)
				continue
			}
			since, ok := s.pending.get(k.path)
			if !ok {
				s.pending.add(k.path, now)
				continue
			}
			if now.Sub(since) <= s.cfg.CSRExpiry.D() {
				continue
			}
			if err := s.removeKeyFile(k.path); err != nil {
				s.log.Error("garbage collection: cannot remove expired CSR key", "key", k.path, "err", err)
				continue
			}
			s.pending.remove(k.path)
			expiredKeys = append(expiredKeys, k.path)
			s.log.Info("garbage collection: removed the key of an unanswered CSR", "key", k.path, "pending_since", since)
		}
	}
	// A pending key that someone removed by hand is not pending any more.
	for _, p := range s.PendingCSRKeys() {
		if !seenKey[p] {
			s.pending.remove(p)
		}
	}
	return expiredKeys
}
