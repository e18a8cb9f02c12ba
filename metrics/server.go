package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is the address the documentation suggests (9464 is commonly used by exporters of
// this kind; any free port works).
const DefaultAddr = "127.0.0.1:9464"

// ErrNotLoopback is returned (wrapped) by Listen for an address other hosts could reach, unless
// the caller allows it explicitly: the metrics name every certificate of the station.
var ErrNotLoopback = errors.New("metrics address is not a loopback address")

// CheckAddr checks that addr (host:port) is a loopback address: 127.0.0.0/8, ::1 or localhost.
// An empty host (every interface) or another address is refused unless allowRemote.
func CheckAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q (use 127.0.0.1:PORT, or allow remote scrapes explicitly)", ErrNotLoopback, addr)
}

// Handler serves the registry in the Prometheus exposition formats (text by default). Errors
// of single series are logged to log (nil: discarded) and the rest is still served: one bad
// series must not blank the dashboard.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Endpoint is a running HTTP endpoint serving /metrics.
type Endpoint struct {
	ln  net.Listener
	srv *http.Server
	end chan struct{}
}

// Listen serves the registry on addr at /metrics until Close. See CheckAddr for allowRemote.
func (m *Metrics) Listen(addr string, allowRemote bool, log *slog.Logger) (*Endpoint, error) {
	if err := CheckAddr(addr, allowRemote); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler(log))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "evsesec metrics: /metrics")
	})
	e := &Endpoint{ln: ln, end: make(chan struct{}), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		defer close(e.end)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("metrics endpoint listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return e, nil
}

// Addr is the address the endpoint listens on (with the port chosen for ":0").
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// Close stops the endpoint and waits for its goroutine.
func (e *Endpoint) Close() error {
	err := e.srv.Close()
	<-e.end
	return err
}
