package main

import (
	"flag"
	"log/slog"
	"os"
	"strconv"

	"github.com/evsesec/evsesec/metrics"
	"github.com/evsesec/evsesec/store"
)

// The environment of module mode: the manager's argv and the module manifest are EVerest's, so
// the metrics endpoint of a module is switched on in the module's environment (a systemd drop-in
// of the manager's unit, or the shell that starts the manager).
const (
	envMetricsAddr        = "EVSESEC_METRICS_ADDR"
	envMetricsAllowRemote = "EVSESEC_METRICS_ALLOW_REMOTE"
)

// metricsFlags say where `evsesec serve` exposes its metrics.
type metricsFlags struct {
	addr        string
	allowRemote bool
}

func (f *metricsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. "+metrics.DefaultAddr+" (default: off; loopback only)")
	fs.BoolVar(&f.allowRemote, "metrics-allow-remote", false, "allow a --metrics address other hosts can reach (the metrics name every certificate of the station)")
}

// metricsFromEnv reads the module mode's metrics settings from the environment.
func metricsFromEnv() metricsFlags {
	allow, _ := strconv.ParseBool(os.Getenv(envMetricsAllowRemote))
	return metricsFlags{addr: os.Getenv(envMetricsAddr), allowRemote: allow}
}

// startMetrics adds the store's families to m and, when an address is set, serves them. The
// returned stop function is never nil.
func startMetrics(m *metrics.Metrics, st *store.Store, f metricsFlags, log *slog.Logger) (stop func(), err error) {
	m.WatchStore(st)
	if f.addr == "" {
		return func() {}, nil
	}
	ep, err := m.Listen(f.addr, f.allowRemote, log)
	if err != nil {
		return func() {}, err
	}
	if f.allowRemote {
		if metrics.CheckAddr(ep.Addr(), false) != nil {
			log.Warn("the metrics endpoint is reachable from other hosts", "address", ep.Addr())
		}
	}
	return func() { ep.Close() }, nil
}
