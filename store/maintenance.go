package store

import (
	"context"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// DefaultExpiryWarning is how long before the current leaf expires the store reports it.
const DefaultExpiryWarning = 30 * 24 * time.Hour

// Maintain runs the store's maintenance loop until ctx ends: garbage collection every
// GCInterval, and events when the leaf in use changes without anyone installing one (a leaf that
// was not valid yet became valid, or the current one expired) and when the current leaf comes
// within 30 days of its expiry. It wakes up at the next such moment, not only on the GC period,
// so a future leaf is announced (and the SECC links moved) as soon as it starts. The reference had
// none of these events.
func (s *Store) Maintain(ctx context.Context) {
	interval := s.cfg.GCInterval.D()
	if interval <= 0 {
		interval = DefaultGCInterval
	}
	gc := time.NewTicker(interval)
	defer gc.Stop()
	w := &leafWatch{current: map[LeafType]certs.Fingerprint{}, warned: map[certs.Fingerprint]bool{}}
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gc.C:
			s.GarbageCollect()
		case <-wake.C:
		}
		next := s.watchLeaves(w)
		d := interval
		if !next.IsZero() {
			if until := next.Sub(s.now()); until < d {
				d = max(until, time.Second)
			}
		}
		wake.Reset(d)
	}
}

// leafWatch remembers what the maintenance loop saw last time.
type leafWatch struct {
	started bool
	current map[LeafType]certs.Fingerprint
	warned  map[certs.Fingerprint]bool
}

// watchLeaves compares the leaves in use with the last look, emits the events of what changed,
// and returns the next moment a leaf starts or ends (zero if none).
func (s *Store) watchLeaves(w *leafWatch) time.Time {
	// A store this process cannot lock (a read-only certs root) still has its leaf events; only
	// the links, which are writes, wait for a process that can.
	unlock, shared, _ := s.lock.lockOrLocal()
	now := s.now()
	v := s.readCAs()
	var events []Event
	var next time.Time
	moved := false
	for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
		ls := s.readLeaves(lt)
		for _, e := range ls.entries {
			for _, t := range []time.Time{e.cert.NotBefore, e.cert.NotAfter.Add(time.Second)} {
				if t.After(now) && (next.IsZero() || t.Before(next)) {
					next = t
				}
			}
		}
		var fp certs.Fingerprint
		sel, st := s.selectLeaves(v, ls, now, false)
		if st == InfoAccepted {
			fp = sel[0].e.fp
			if left := sel[0].e.cert.NotAfter.Sub(now); left < DefaultExpiryWarning && !w.warned[fp] {
				w.warned[fp] = true
				s.log.Warn("the leaf in use expires soon", "type", lt, "leaf", describe(sel[0].e.cert), "not_after", sel[0].e.cert.NotAfter)
				events = append(events, Event{Kind: EventLeafExpiry, LeafType: lt, Path: sel[0].e.firstFile().path})
			}
		}
		if w.started && fp != w.current[lt] {
			moved = moved || lt == LeafV2G
			if st == InfoAccepted {
				s.log.Info("another leaf is in use now", "type", lt, "leaf", describe(sel[0].e.cert))
				events = append(events, Event{Kind: EventLeafValid, Operation: OperationInstalled, LeafType: lt, Path: sel[0].e.firstFile().path})
			} else {
				s.log.Warn("no usable leaf any more", "type", lt, "status", st)
				events = append(events, Event{Kind: EventLeafValid, Operation: OperationDeleted, LeafType: lt})
			}
		}
		w.current[lt] = fp
	}
	w.started = true
	if moved && shared {
		s.updateLinksLocked()
	}
	unlock()
	s.emit(events)
	return next
}
