package store

import (
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// GCReport says what a garbage collection run removed.
type GCReport struct {
	ExpiredCSRKeys []string `json:"expired_csr_keys"` // keys of CSRs never answered within CSRExpiry
	RemovedLeaves  []string `json:"removed_leaves"`   // files of expired leaves pruned because the store was over a limit
	RemovedOCSP    []string `json:"removed_ocsp"`     // OCSP responses whose certificate is gone or past nextUpdate
}

// GarbageCollect cleans the store. On every run: keys that no certificate matches are tracked as
// pending CSR keys (after a restart their age starts again, so a pending key survives it), and
// those pending longer than CSRExpiry are deleted; OCSP responses of certificates that are gone or
// past their nextUpdate are deleted. Only when the store is over a limit: expired leaves beyond
// the newest MinKeptLeaves of each type are deleted with their key and OCSP files. A key is only
// ever deleted when no certificate in any leaf directory matches it; a key that cannot be read
// (wrong password, unsupported format) is never deleted (the reference's defect 3).
func (s *Store) GarbageCollect() GCReport {
	unlock, err := s.lock.lock()
	if err != nil {
		s.log.Error("garbage collection: cannot lock the store", "err", err)
		return GCReport{}
	}
	rep, events := s.garbageCollect()
	unlock()
	s.emit(events)
	return rep
}

func (s *Store) garbageCollect() (GCReport, []Event) {
	var rep GCReport
	var events []Event
	v := s.readCAs()
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	if full, why := s.isFull(); full {
		s.log.Info("garbage collection: store over its limit, pruning expired leaves", "why", why)
		for _, ls := range sets {
			removed, ev := s.pruneExpiredLeaves(sets, ls)
			rep.RemovedLeaves = append(rep.RemovedLeaves, removed...)
			events = append(events, ev...)
		}
		if len(events) > 0 {
			sets = []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
		}
	}
	rep.ExpiredCSRKeys = s.expireCSRKeys(sets)
	rep.RemovedOCSP = s.sweepOCSP(v, sets)
	if len(events) > 0 {
		s.updateLinksLocked()
	}
	return rep, events
}

// pruneExpiredLeaves deletes the expired leaves of ls that are not among its newest
// MinKeptLeaves.
func (s *Store) pruneExpiredLeaves(sets []*leafSet, ls *leafSet) ([]string, []Event) {
	now := s.now()
	var removed []string
	var events []Event
	removing := map[certs.Fingerprint]bool{}
	var victims []*leafEntry
	for i, e := range ls.entries {
		if i < s.cfg.MinKeptLeaves || validityAt(e.cert, now) != expired {
			continue
		}
		removing[e.fp] = true
		victims = append(victims, e)
	}
	for _, e := range victims {
		if err := s.removeLeafUnit(sets, ls, e, removing); err != nil {
			s.log.Error("garbage collection: cannot remove expired leaf", "leaf", describe(e.cert), "err", err)
			continue
		}
		for _, f := range append(append([]*certFile{}, e.single...), e.chains...) {
			removed = append(removed, f.path)
		}
		s.log.Info("garbage collection: removed expired leaf", "type", ls.lt, "leaf", describe(e.cert))
		events = append(events, Event{Kind: EventGC, Operation: OperationDeleted, LeafType: ls.lt, Path: e.firstFile().path})
	}
	return removed, events
}

// expireCSRKeys adopts keys without a certificate as pending and deletes those pending for longer
// than CSRExpiry.
func (s *Store) expireCSRKeys(sets []*leafSet) []string {
	inUse := map[string]bool{}
	for _, ls := range sets {
		for _, f := range ls.files {
			for _, c := range f.certs {
				inUse[keys.Fingerprint(c.PublicKey)] = true
			}
		}
	}
	now := s.now()
	var expiredKeys []string
	seenDir := map[string]bool{}
	for _, ls := range sets {
		if seenDir[ls.keyDir] {
			continue
		}
		seenDir[ls.keyDir] = true
		for _, k := range s.listKeys(ls.keyDir) {
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
			if err := removeDurable(s.fs, k.path); err != nil {
				s.log.Error("garbage collection: cannot remove expired CSR key", "key", k.path, "err", err)
				continue
			}
			s.pending.remove(k.path)
			expiredKeys = append(expiredKeys, k.path)
			s.log.Info("garbage collection: removed the key of an unanswered CSR", "key", k.path, "pending_since", since)
		}
	}
	return expiredKeys
}
