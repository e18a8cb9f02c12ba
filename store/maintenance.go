package store

import (
	"context"
	"crypto/x509"
	"math"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// DefaultExpiryWarning is the default warning threshold (expiry_warning_days): how long before a
// certificate the station depends on expires the store starts to report it.
const DefaultExpiryWarning = DefaultExpiryWarningDays * 24 * time.Hour

// Maintain runs the store's maintenance loop until ctx ends: garbage collection every
// GCInterval, and events when the leaf in use changes without anyone installing one (a leaf that
// was not valid yet became valid, or the current one expired). It also warns, once per threshold
// (expiry_warning_days, expiry_critical_days) and certificate, when a leaf in use or a CA of its
// chain comes within that threshold of its end; for a leaf it also emits EventLeafExpiry. It
// wakes up at the next such moment, not only on the GC period, so a future leaf is announced (and
// the SECC links moved) as soon as it starts. The reference had none of these events.
func (s *Store) Maintain(ctx context.Context) {
	interval := s.cfg.GCInterval.D()
	if interval <= 0 {
		interval = DefaultGCInterval
	}
	gc := time.NewTicker(interval)
	defer gc.Stop()
	w := &leafWatch{current: map[LeafType]certs.Fingerprint{}, warned: map[expiryWarning]bool{}}
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
	warned  map[expiryWarning]bool
}

// expiryWarning is one warning given: a certificate crossed a threshold.
type expiryWarning struct {
	fp        certs.Fingerprint
	threshold time.Duration
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
	for _, lt := range stationLeafTypes {
		ls := s.kindLeaves(lt)
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
			if s.warnExpiry(w, lt, "leaf", sel[0].e.cert, now) {
				events = append(events, Event{Kind: EventLeafExpiry, LeafType: lt, Path: sel[0].e.firstFile().path})
			}
			for _, c := range dependencies(sel[0]) {
				s.warnExpiry(w, lt, "CA", c, now)
			}
			for _, c := range append([]*x509.Certificate{sel[0].e.cert}, dependencies(sel[0])...) {
				if t := s.nextThreshold(c, now); !t.IsZero() && (next.IsZero() || t.Before(next)) {
					next = t
				}
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

// warnExpiry logs a warning when c (a leaf in use of type lt, or a CA of its chain) is within an
// expiry threshold it was not warned about yet, and reports whether it did. A certificate that is
// already within the critical threshold when first seen gets one warning, not one per threshold.
func (s *Store) warnExpiry(w *leafWatch, lt LeafType, role string, c *x509.Certificate, now time.Time) bool {
	warning, critical := s.cfg.ExpiryThresholds()
	left := c.NotAfter.Sub(now)
	fp := certs.FingerprintOf(c)
	var crossed time.Duration
	for _, th := range []time.Duration{critical, warning} {
		if left <= th {
			crossed = th
			break
		}
	}
	if crossed == 0 || w.warned[expiryWarning{fp, crossed}] {
		return false
	}
	for _, th := range []time.Duration{critical, warning} {
		if th >= crossed {
			w.warned[expiryWarning{fp, th}] = true
		}
	}
	level := "warning"
	if crossed == critical {
		level = "critical"
	}
	s.log.Warn("a certificate the station depends on expires soon", "type", lt, "role", role, "certificate", describe(c),
		"not_after", c.NotAfter, "days_left", int(math.Floor(left.Hours()/24)), "threshold_days", int(crossed.Hours()/24), "severity", level)
	return true
}

// nextThreshold is the next moment c crosses an expiry threshold (zero when it has crossed both).
func (s *Store) nextThreshold(c *x509.Certificate, now time.Time) time.Time {
	warning, critical := s.cfg.ExpiryThresholds()
	var next time.Time
	for _, th := range []time.Duration{warning, critical} {
		if t := c.NotAfter.Add(-th); t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}
