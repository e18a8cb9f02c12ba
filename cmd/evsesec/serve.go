package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/metrics"
	"github.com/evsesec/evsesec/store"
)

// brokerFlags are the flags that say which MQTT broker to talk to and which module to address
// (serve, call).
type brokerFlags struct {
	url          string
	username     string
	passwordFile string
	tlsCA        string
	tlsCert      string
	tlsKey       string
	moduleID     string
	prefix       string
	wire         string
}

func (f *brokerFlags) register(fs *flag.FlagSet, brokerUsage string) {
	fs.StringVar(&f.url, "broker", "", brokerUsage)
	fs.StringVar(&f.username, "username", "", "MQTT user name for --broker")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the MQTT password for --broker (first line; never logged)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM file of the CA(s) that signed the broker's certificate (default: the system roots); needs a TLS --broker URL (ssl://, tls://, mqtts://)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate for a TLS --broker (with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&f.moduleID, "module-id", everest.DefaultModuleID, "module id of the service in the EVerest topics")
	fs.StringVar(&f.prefix, "prefix", everest.DefaultPrefix, "EVerest MQTT prefix of the topics")
	fs.StringVar(&f.wire, "everest-wire", everest.WireLatest, "EVerest framework wire to speak: "+strings.Join(everest.WireNames(), ", ")+
		" (or a framework version such as v0.24)")
}

// everestWire returns the --everest-wire choice; nil for auto.
func (f *brokerFlags) everestWire() (everest.Wire, error) { return everest.WireByName(f.wire) }

// externalOnly reports whether a flag that only applies to --broker was given without it.
func (f *brokerFlags) externalOnly() string {
	for name, v := range map[string]string{"username": f.username, "password-file": f.passwordFile, "tls-ca": f.tlsCA, "tls-cert": f.tlsCert, "tls-key": f.tlsKey} {
		if v != "" && f.url == "" {
			return "--" + name
		}
	}
	return ""
}

// broker builds the broker settings: the URL (a bare host:port means tcp://), the password read
// from its file, and the TLS settings.
func (f *brokerFlags) broker() (everest.Broker, error) {
	b := everest.Broker{URL: everest.ParseBrokerURL(f.url), Username: f.username}
	if f.passwordFile != "" {
		data, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return b, fmt.Errorf("password file: %w", err)
		}
		b.Password, _, _ = strings.Cut(string(data), "\n")
		b.Password = strings.TrimSuffix(b.Password, "\r")
		if f.username == "" {
			return b, errors.New("--password-file needs --username")
		}
	}
	tlsCfg, err := everest.TLSConfig(f.tlsCA, f.tlsCert, f.tlsKey)
	if err != nil {
		return b, err
	}
	b.TLS = tlsCfg
	return b, nil
}

// runServe is `evsesec serve`: the evse_security interface on the EVerest topics, until SIGTERM
// or Ctrl-C.
func runServe(argv []string, stdout, stderr io.Writer) int {
	setServiceMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return serve(ctx, argv, stdout, stderr)
}

// serve runs the standalone service until ctx ends. Exit status: 0 after a clean stop, 2 for a
// command line that cannot be run, 1 when the store cannot be opened, the embedded broker cannot
// listen or the external broker cannot be reached.
func serve(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	var bf brokerFlags
	bf.register(fs, "external MQTT broker URL: tcp://host:port, ssl://host:port or unix:///path (default: start the embedded broker)")
	listen := fs.String("listen", "", "address of the embedded broker (default "+everest.DefaultListen+"; keep it on loopback: every client may use every topic)")
	socket := fs.String("socket", "", "Unix socket path of the embedded broker instead of --listen (mode 0660)")
	var mf metricsFlags
	mf.register(fs)
	var pad padFlag
	fs.Var(&pad, "pad-results", fmt.Sprintf("pad every command result with JSON whitespace to %d bytes (or =N bytes), so that an external mosquitto with set_tcp_nodelay false sends it at once instead of after the caller's delayed ACK (about 40 ms); costs the padding per result to the broker and every subscriber (default: off)", everest.DefaultResultPadding))
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec serve [--config FILE | --certs DIR] [--broker URL] [--listen 127.0.0.1:1883 | --socket PATH]")
		fmt.Fprintln(stderr, "                     [--module-id evse_security] [--prefix everest/] [--username U --password-file F]")
		fmt.Fprintln(stderr, "                     [--tls-ca F --tls-cert F --tls-key F] [--metrics 127.0.0.1:9464] [--everest-wire v0.25]")
		fmt.Fprintln(stderr, "                     [--pad-results[=BYTES]]")
		fmt.Fprintln(stderr, "\nServes every evse_security command on the EVerest topics (<prefix>modules/<module-id>/impl/main/cmd/<cmd>,")
		fmt.Fprintln(stderr, "results on .../cmd/<cmd>/response/<caller>) and publishes certificate_store_update after each change.")
		fmt.Fprintln(stderr, "Without --broker it starts an embedded MQTT broker. It also reports ready, so an EVerest manager")
		fmt.Fprintln(stderr, "with `standalone: true` for this module id accepts it. --everest-wire speaks an older framework's wire")
		fmt.Fprintln(stderr, "(one cmd topic per implementation, bare JSON); auto asks the manager first. SIGTERM or Ctrl-C stops it.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "evsesec serve:", msg, "(see evsesec serve -h)")
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument " + fs.Arg(0))
	case bf.url != "" && (*listen != "" || *socket != ""):
		return usage("--broker excludes --listen and --socket")
	case *listen != "" && *socket != "":
		return usage("--listen and --socket exclude each other")
	case bf.externalOnly() != "":
		return usage(bf.externalOnly() + " applies to an external broker (--broker) only")
	case pad > 0 && bf.url == "":
		return usage("--pad-results applies to an external broker (--broker) only: the embedded broker sends every packet at once")
	case mf.addr != "" && metrics.CheckAddr(mf.addr, mf.allowRemote) != nil:
		return usage(metrics.CheckAddr(mf.addr, mf.allowRemote).Error())
	}
	w, err := bf.everestWire()
	if err != nil {
		return usage(err.Error())
	}
	level := slog.LevelInfo
	if sf.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := sf.load()
	if err != nil {
		fmt.Fprintln(stderr, "evsesec serve:", err)
		return 1
	}
	var b everest.Broker
	if bf.url != "" {
		if b, err = bf.broker(); err != nil {
			fmt.Fprintln(stderr, "evsesec serve:", err)
			return exitUsage
		}
	} else {
		eb, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: *listen, Socket: *socket, Logger: logger})
		if err != nil {
			fmt.Fprintln(stderr, "evsesec serve:", err)
			return 1
		}
		defer eb.Close()
		logger.Info("embedded MQTT broker listening", "address", eb.Addr(), "url", eb.URL())
		b = everest.Broker{URL: eb.URL()}
	}
	m := metrics.New()
	wireName, iv := everest.WireAuto, api.LatestInterface()
	if w != nil {
		wireName, iv = w.Name(), api.InterfaceOfRelease(releaseOfWire[w.Name()])
	}
	r := everest.NewRunner(everest.Options{Broker: b, Prefix: bf.prefix, ModuleID: bf.moduleID, Logger: logger,
		Wire: wireName, WireReason: "--everest-wire", Fallback: api.FailureResult, OnConnection: m.BrokerConnection,
		PadResults: int(pad)})
	logPadding(logger, int(pad), "--pad-results")
	ext := &extensionUse{}
	st, err := store.Open(cfg, store.Options{Logger: logger, OnEvent: storeUpdates(r, iv, ext, logger)})
	if err != nil {
		fmt.Fprintln(stderr, "evsesec serve:", err)
		return 1
	}
	defer st.Close() // removes this process's private directory of derived files
	logger.Info("certificate store", "certs_root", cfg.CertsRoot, "everest_wire", wireName)
	stopMetrics, err := startMetrics(m, st, mf, logger)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec serve:", err)
		return 1
	}
	defer stopMetrics()
	if err := serveStore(ctx, r, st, m.Instrument(api.NewDispatcher(st)), func(ctx context.Context, h everest.Handler) error { return r.Serve(ctx, ext.watch(iv.Serve(h))) }); err != nil {
		fmt.Fprintln(stderr, "evsesec serve:", err)
		return 1
	}
	return 0
}

// serveStore runs the store's maintenance loop (GC timer, leaf events) beside the runner once it
// is ready, and waits for both to end.
func serveStore(ctx context.Context, r *everest.Runner, st *store.Store, h everest.Handler, run func(context.Context, everest.Handler) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { maintainWhenReady(ctx, r, st) })
	err := run(ctx, h)
	cancel()
	wg.Wait()
	return err
}

// maintainWhenReady starts the maintenance loop once the runner serves (its events are
// published as certificate_store_update) and runs it until ctx ends.
func maintainWhenReady(ctx context.Context, r *everest.Runner, st *store.Store) {
	select {
	case <-r.Ready():
		st.Maintain(ctx)
	case <-ctx.Done():
	}
}
