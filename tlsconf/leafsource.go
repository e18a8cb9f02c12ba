package tlsconf

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/evsesec/evsesec/store"
)

// DefaultMaxAge is how long built certificates are reused when no store event says they changed.
const DefaultMaxAge = time.Minute

// leafSource keeps the loaded candidates of one leaf type: the store's current choice, built into
// tls.Certificates once and reused until the store reports a change of the type or its trust
// domain (Events), the cache is older than maxAge, or a cached certificate is not valid at the
// handshake's time.
type leafSource struct {
	lt     store.LeafType
	fetch  func() ([]store.CertificateInfo, store.InfoStatus)
	build  builder
	events *Events
	maxAge time.Duration // <= 0: rebuild at every handshake
	log    *slog.Logger

	mu      sync.Mutex
	gen     uint64
	builtAt time.Time // wall clock with monotonic reading; maxAge is real time, not the config's clock
	cands   []*candidate
}

// candidates returns the usable leaves at now, preferred first, or a *LeafError saying why there
// is none. Failures are not cached: the next handshake asks the store again.
func (s *leafSource) candidates(now time.Time) ([]*candidate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := s.events.generation(s.lt, s.lt.Domain())
	if s.fresh(gen, now) {
		return s.cands, nil
	}
	s.cands = nil
	infos, status := s.fetch()
	if status != store.InfoAccepted {
		return nil, &LeafError{Type: s.lt, Status: status}
	}
	var out []*candidate
	var failures []*LeafError
	for _, info := range infos {
		c, err := s.build.build(info, s.lt, now)
		if err == nil {
			if verr := c.validAt(now); verr != nil {
				err = &LeafError{Type: s.lt, Status: store.InfoNotFoundValid, Err: verr}
			}
		}
		if err != nil {
			s.log.Warn("leaf certificate not usable for TLS", "type", s.lt, "err", err)
			var le *LeafError
			if !errors.As(err, &le) {
				le = &LeafError{Type: s.lt, Status: store.InfoNotFoundValid, Err: err}
			}
			failures = append(failures, le)
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, joinLeafErrors(s.lt, failures)
	}
	s.cands, s.gen, s.builtAt = out, gen, time.Now()
	return out, nil
}

// fresh reports whether the cached candidates may be served at now.
func (s *leafSource) fresh(gen uint64, now time.Time) bool {
	if s.cands == nil || gen != s.gen || s.maxAge <= 0 || time.Since(s.builtAt) >= s.maxAge {
		return false
	}
	for _, c := range s.cands {
		if c.validAt(now) != nil {
			return false
		}
	}
	return true
}

// joinLeafErrors is the error for a type none of whose leaves could be used: the status of the
// first failure (the store's preferred leaf) with every failure's detail.
func joinLeafErrors(lt store.LeafType, failures []*LeafError) error {
	if len(failures) == 0 {
		return &LeafError{Type: lt, Status: store.InfoNotFoundValid}
	}
	if len(failures) == 1 {
		return failures[0]
	}
	details := make([]error, 0, len(failures))
	for _, f := range failures {
		if f.Err != nil {
			details = append(details, f.Err)
		}
	}
	return &LeafError{Type: lt, Status: failures[0].Status, Err: errors.Join(details...)}
}
