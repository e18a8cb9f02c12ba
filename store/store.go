package store

import (
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the certificate and key store. Its methods mirror the commands of the evse_security
// interface and return the interface's result codes; none of them panics or returns a Go error
// for bad input. It is safe for concurrent use by several goroutines and, through its lock file,
// by several processes.
type Store struct {
	cfg     Config
	fs      FS
	now     func() time.Time
	log     *slog.Logger
	lock    *storeLock
	files   *fileCache
	pools   poolCache
	keys    keyCache
	pending pendingKeys

	keyBackends *keyBackends

	// caPaths are the bundle paths of CATypes, whose stamps key the CA view without inotify.
	caPaths []string

	// gen counts the store's own changes to the filesystem; views keeps what was read.
	gen   atomic.Uint64
	views viewCache

	pemMu sync.Mutex
	pems  map[*x509.Certificate]string // anchorPEM

	watchMu    sync.Mutex
	watch      *dirWatch
	watchCount uint64

	// gcStats counts the garbage collection runs since Open (monitoring reads them).
	gcStats gcCounters

	onEvent func(Event)

	// private is this process's directory for derived files of a read-only tree.
	private privateDir
}

// Options are the optional collaborators of a Store.
type Options struct {
	// FS is the filesystem; nil means the operating system's.
	FS FS
	// Clock returns the current time; nil means time.Now. Tests inject a fixed or fake clock.
	Clock func() time.Time
	// Logger receives the store's diagnostics; nil discards them. Key material and passwords
	// are never logged.
	Logger *slog.Logger
	// OnEvent is called after every change of the store (certificate_store_update and the
	// store's own events). It is called with the store unlocked and must not block for long.
	OnEvent func(Event)
}

// Open returns a store for cfg. It reads nothing yet and creates nothing: a missing bundle is an
// empty domain until a certificate is installed into it.
func Open(cfg Config, opts Options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.CertsRoot)
	if err != nil {
		return nil, fmt.Errorf("certs root: %w", err)
	}
	cfg.CertsRoot = abs
	s := &Store{cfg: cfg, fs: opts.FS, now: opts.Clock, log: opts.Logger, onEvent: opts.OnEvent}
	if s.fs == nil {
		s.fs = OSFS{}
	}
	s.fs = genFS{FS: s.fs, gen: &s.gen}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, t := range CATypes {
		s.caPaths = append(s.caPaths, cfg.CABundlePath(t))
	}
	s.lock = newStoreLock(cfg.CertsRoot)
	s.files = newFileCache(s.fs)
	s.keyBackends = openKeyBackends(cfg)
	return s, nil
}

// Config returns the store's configuration with every path resolved.
func (s *Store) Config() Config { return s.cfg }

// EventKind says what caused an Event.
type EventKind string

// The kinds of store events. Install and Delete are the interface's certificate_store_update;
// the others are evsesec's own and are also published as certificate_store_update where the
// interface can express them (a leaf removed by GC is Deleted, a leaf becoming valid Installed,
// an OCSP update of a V2G leaf's chain Installed: see Store.ocspEvent).
const (
	EventInstall    EventKind = "install"
	EventDelete     EventKind = "delete"
	EventGC         EventKind = "gc"
	EventLeafValid  EventKind = "leaf_valid"
	EventLeafExpiry EventKind = "leaf_expiring"
	// EventOCSP: a cached OCSP response was stored (update_ocsp_cache) or removed by garbage
	// collection (stale, or its responder expired).
	EventOCSP EventKind = "ocsp"
)

// Event reports a change of the store. At most one of CAType and LeafType is set; every kind but
// EventOCSP sets exactly one.
type Event struct {
	Kind      EventKind
	Operation UpdateOperation
	CAType    CAType
	LeafType  LeafType
	// Path is the file concerned, when there is one.
	Path string
}

// write runs op under the exclusive lock, then reports op's events with the store unlocked (a
// subscriber may call back into the store). When the lock cannot be taken, op does not run and
// failed is the answer.
func write[T any](s *Store, command string, failed T, op func() (T, []Event)) T {
	unlock, err := s.lock.lock()
	if err != nil {
		s.log.Error(command+": cannot lock the store", "err", err)
		return failed
	}
	res, events := op()
	unlock()
	s.emit(events)
	return res
}

func (s *Store) emit(events []Event) {
	if s.onEvent == nil {
		return
	}
	for _, e := range events {
		s.onEvent(e)
	}
}
