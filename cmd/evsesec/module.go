package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/metrics"
	"github.com/evsesec/evsesec/store"
)

// moduleStartTimeout is how long module mode keeps trying to reach the broker at start. The
// manager starts its modules once it is connected itself, so the broker is normally there; if it
// is not, the module exits non-zero and the manager (and systemd) take over, as with the C++
// module.
const moduleStartTimeout = 5 * time.Second

// managerArgs are the arguments the EVerest manager starts a module with
// (ModuleLoader::parse_command_line in the framework).
type managerArgs struct {
	prefix         string // --prefix: the installation prefix
	module         string // --module: the module id (required)
	logConfig      string // --log_config: Boost logging config, not used
	everestPrefix  string // --mqtt_everest_prefix
	externalPrefix string // --mqtt_external_prefix, not used
	host, port     string // --mqtt_broker_host, --mqtt_broker_port
	socket         string // --mqtt_broker_socket_path
	ignored        []string
}

// isModuleInvocation reports whether the command line is the manager's: flags first, --module
// among them. `evsesec --module evse_security ...` is module mode; `evsesec serve` is not.
func isModuleInvocation(args []string) bool {
	if len(args) == 0 || !strings.HasPrefix(args[0], "--") {
		return false
	}
	for _, a := range args {
		if a == "--module" || strings.HasPrefix(a, "--module=") {
			return true
		}
	}
	return false
}

// parseManagerArgs reads `--name value` and `--name=value` pairs. Values may be empty (the
// manager passes --mqtt_external_prefix ""). Unknown flags (--config, which modules ignore) are
// skipped with their value.
func parseManagerArgs(args []string) (managerArgs, error) {
	m := managerArgs{host: "localhost", port: "1883", everestPrefix: everest.DefaultPrefix, prefix: "/usr"}
	known := map[string]*string{
		"prefix": &m.prefix, "module": &m.module, "log_config": &m.logConfig,
		"mqtt_everest_prefix": &m.everestPrefix, "mqtt_external_prefix": &m.externalPrefix,
		"mqtt_broker_host": &m.host, "mqtt_broker_port": &m.port, "mqtt_broker_socket_path": &m.socket,
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			return m, fmt.Errorf("unexpected argument %q", a)
		}
		name, value, hasValue := strings.Cut(name, "=")
		dst, isKnown := known[name]
		if !hasValue {
			switch {
			case isKnown && i+1 < len(args):
				i++
				value = args[i]
			case isKnown:
				return m, fmt.Errorf("--%s needs a value", name)
			case i+1 < len(args) && !strings.HasPrefix(args[i+1], "--"):
				i++ // an unknown flag's value
			}
		}
		if !isKnown {
			m.ignored = append(m.ignored, "--"+name)
			continue
		}
		*dst = value
	}
	if m.module == "" {
		return m, fmt.Errorf("--module is required")
	}
	// The framework lets the environment override the broker address.
	if v := os.Getenv("MQTT_SERVER_ADDRESS"); v != "" {
		m.host = v
	}
	if v := os.Getenv("MQTT_SERVER_PORT"); v != "" {
		m.port = v
	}
	return m, nil
}

// brokerURL is the broker the manager named: its Unix socket if given, else host:port.
func (m managerArgs) brokerURL() string {
	if m.socket != "" {
		return everest.UnixURL(m.socket)
	}
	return everest.TCPURL(m.host, m.port)
}

// runModule is module mode: the binary started by the EVerest manager as its EvseSecurity module
// (argv[0] "<module id>:<ModuleName>", then the manager's flags). It fetches its config from the
// manager, opens the store under <etc_dir>/certs, reports ready and serves until SIGTERM (exit 0).
// After the start it never exits on its own: the manager would take every module down with it.
func runModule(args []string, stdout, stderr io.Writer) int {
	setServiceMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return module(ctx, args, stdout, stderr)
}

func module(ctx context.Context, args []string, _, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m, err := parseManagerArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec (EVerest module mode):", err)
		return exitUsage
	}
	logger = logger.With("module", m.module)
	if len(m.ignored) > 0 {
		logger.Info("ignoring arguments", "args", m.ignored)
	}
	mx := metrics.New()
	opts := everest.Options{
		Broker:        everest.Broker{URL: m.brokerURL()},
		Prefix:        m.everestPrefix,
		ModuleID:      m.module,
		InstallPrefix: m.prefix,
		Logger:        logger,
		StartTimeout:  moduleStartTimeout,
		OnConnection:  mx.BrokerConnection,
		Wire:          everest.WireAuto,
		Fallback:      api.FailureResult,
		PadResults:    padResultsFromEnv(logger),
	}
	chooseModuleWire(&opts, m, args, logger)
	r := everest.NewRunner(opts)
	var wg sync.WaitGroup
	var opened *store.Store // set by setup, which RunModule calls once, before it returns
	setup := func(ctx context.Context, mc everest.ModuleConfig) (everest.Handler, error) {
		iv := interfaceOf(mc, logger)
		cfg, warnings := api.StoreConfig(mc.Params, mc.EtcDir)
		for _, w := range warnings {
			logger.Warn(w)
		}
		logger.Info("certificate store", "certs_root", cfg.CertsRoot,
			"v2g_ca_bundle", cfg.CABundlePath(store.CAV2G), "csms_ca_bundle", cfg.CABundlePath(store.CACSMS),
			"mo_ca_bundle", cfg.CABundlePath(store.CAMO), "mf_ca_bundle", cfg.CABundlePath(store.CAMF))
		ext := &extensionUse{}
		st, err := store.Open(cfg, store.Options{Logger: logger, OnEvent: storeUpdates(r, iv, ext, logger)})
		if err != nil {
			return nil, err
		}
		opened = st
		wg.Go(func() { maintainWhenReady(ctx, r, st) })
		// A metrics endpoint that cannot start is logged, never fatal: the manager would take
		// every module down with this one.
		if stop, err := startMetrics(mx, st, metricsFromEnv(), logger); err != nil {
			logger.Error("metrics endpoint not started", "env", envMetricsAddr, "err", err)
		} else {
			wg.Go(func() { <-ctx.Done(); stop() })
		}
		return ext.watch(iv.Serve(mx.Instrument(api.NewDispatcher(st)))), nil
	}
	err = r.RunModule(ctx, setup)
	wg.Wait()
	if opened != nil {
		opened.Close() // removes this process's private directory of derived files
	}
	if err != nil {
		fmt.Fprintln(stderr, "evsesec (EVerest module mode):", err)
		return 1
	}
	return 0
}
