// Package metrics exposes evsesec in the Prometheus text format: per certificate its expiry and
// state, per leaf type whether the next TLS handshake has a leaf, the OCSP cache of the SECC
// leaves, the store's usage against its limits and its garbage collection (all read from the
// store at scrape time), and the service's commands, latencies, errors and broker connection
// (counted as they happen).
//
// It points inward: it uses the store and the api package, and knows no transport. The service
// side wraps any command handler (Instrument) and is told of the broker connection through a
// callback (BrokerConnection), so the MQTT code needs no knowledge of Prometheus.
package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/store"
)

// Metrics is one registry of evsesec's metrics: the service counters from the start, the store's
// families once WatchStore is called. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	commands   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	errs       *prometheus.CounterVec
	connected  prometheus.Gauge
	reconnects prometheus.Counter

	mu        sync.Mutex
	connSeen  bool
	watching  bool
	knownCmds map[string]bool
}

// New returns the metrics of one service, with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evsesec_commands_total",
			Help: "Commands served, by command and result code (the interface's status or result enum; ok for results without one; error when the command failed).",
		}, []string{"command", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "evsesec_command_duration_seconds",
			Help: "Time to serve a command, by command.",
			// Lookups answer from the in-memory index in well under a millisecond; installs and
			// CSRs write files and make keys (RSA and TPM keys take seconds).
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"command"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evsesec_command_errors_total",
			Help: "Commands that failed instead of answering a result code, by command and error type (invalid_arguments, unknown_command, canceled, internal).",
		}, []string{"command", "type"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "evsesec_broker_connected",
			Help: "1 while the service is connected to its MQTT broker.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evsesec_broker_reconnects_total",
			Help: "Connections to the MQTT broker after the first one (each follows a lost connection).",
		}),
		knownCmds: map[string]bool{},
	}
	for _, c := range api.Commands() {
		m.knownCmds[c] = true
	}
	m.reg.MustRegister(m.commands, m.latency, m.errs, m.connected, m.reconnects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the endpoint serves (tests gather from it directly).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WatchStore adds the store's families, read from st at every scrape. A service has one store;
// a second call is ignored.
func (m *Metrics) WatchStore(st *store.Store) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watching {
		return
	}
	m.watching = true
	m.reg.MustRegister(storeCollector{st: st})
}

// BrokerConnection is told of every connection (true) and every lost connection (false) to the
// MQTT broker. Its signature fits the runner's connection callback.
func (m *Metrics) BrokerConnection(connected bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !connected {
		m.connected.Set(0)
		return
	}
	if m.connSeen {
		m.reconnects.Inc()
	}
	m.connSeen = true
	m.connected.Set(1)
}

// Handler runs one command by name with its JSON arguments: *api.Dispatcher and every transport's
// handler have this shape.
type Handler interface {
	Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error)
}

// Instrument returns h counting every command it serves: by result code, with its latency, and
// its error type when it fails. The results and errors pass through unchanged.
func (m *Metrics) Instrument(h Handler) Handler { return instrumented{next: h, m: m} }

type instrumented struct {
	next Handler
	m    *Metrics
}

// Call runs the command on the wrapped handler and counts it.
func (i instrumented) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	start := time.Now()
	res, err := i.next.Call(ctx, name, args)
	elapsed := time.Since(start)
	cmd := name
	if !i.m.knownCmds[cmd] {
		cmd = "unknown" // a caller's typo must not make a new series
	}
	i.m.latency.WithLabelValues(cmd).Observe(elapsed.Seconds())
	if err != nil {
		i.m.commands.WithLabelValues(cmd, "error").Inc()
		i.m.errs.WithLabelValues(cmd, errorType(err)).Inc()
		return res, err
	}
	i.m.commands.WithLabelValues(cmd, resultCode(res)).Inc()
	return res, err
}

// errorType classifies a command's error into a bounded set.
func errorType(err error) string {
	var ae *api.ArgError
	switch {
	case errors.As(err, &ae):
		return "invalid_arguments"
	case errors.Is(err, api.ErrUnknownCommand):
		return "unknown_command"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "internal"
}

// enumValue matches the interface's enum strings (Accepted, NotFoundValid, ...). Other string
// results (the paths of get_verify_file) are not result codes and must not become label values.
var enumValue = regexp.MustCompile(`^[A-Z][A-Za-z]{0,47}$`)

// resultCode is the result code of a command's JSON result: an enum string result as it is,
// the status of an object result, true or false for boolean results, ok for everything else.
func resultCode(res json.RawMessage) string {
	var v any
	if err := json.Unmarshal(res, &v); err != nil {
		return "ok"
	}
	switch x := v.(type) {
	case string:
		if enumValue.MatchString(x) {
			return x
		}
	case bool:
		if x {
			return "true"
		}
		return "false"
	case map[string]any:
		if s, ok := x["status"].(string); ok && enumValue.MatchString(s) {
			return s
		}
	}
	return "ok"
}
