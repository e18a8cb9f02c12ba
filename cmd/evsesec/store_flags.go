package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/evsesec/evsesec/store"
)

// defaultCertsRoot is where an EVerest installation keeps its certificates.
const defaultCertsRoot = "/etc/everest/certs"

// storeFlags are the flags every command that opens a store shares.
type storeFlags struct {
	certs    string
	config   string
	password string
	passSet  bool
	verbose  bool
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certs, "certs", "", "certificate tree in the EVerest default layout (default $EVSESEC_CERTS or "+defaultCertsRoot+")")
	fs.StringVar(&f.config, "config", "", "YAML config file with the module's keys (csms_ca_bundle, ..., private_key_password)")
	fs.Func("password", "private key password (overrides the config's private_key_password)", func(s string) error {
		f.password, f.passSet = s, true
		return nil
	})
	fs.BoolVar(&f.verbose, "v", false, "log what the store does to stderr")
}

// load builds the store configuration the flags describe.
func (f *storeFlags) load() (store.Config, error) {
	if f.certs != "" && f.config != "" {
		return store.Config{}, errors.New("--certs and --config exclude each other")
	}
	var cfg store.Config
	switch {
	case f.config != "":
		c, err := store.LoadConfigFile(f.config)
		if err != nil {
			return store.Config{}, err
		}
		cfg = c
	case f.certs != "":
		cfg = store.DefaultConfig(f.certs)
	default:
		root := os.Getenv("EVSESEC_CERTS")
		if root == "" {
			root = defaultCertsRoot
		}
		cfg = store.DefaultConfig(root)
	}
	if f.passSet {
		cfg.PrivateKeyPassword = f.password
	}
	return cfg, nil
}

// open opens the store with a logger on stderr: warnings always (why a call was rejected),
// everything with -v.
func (f *storeFlags) open(stderr io.Writer) (*store.Store, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, err
	}
	return f.openConfig(cfg, stderr)
}

// openConfig opens the store of cfg with the logger of open.
func (f *storeFlags) openConfig(cfg store.Config, stderr io.Writer) (*store.Store, error) {
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return store.Open(cfg, store.Options{Logger: logger})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
