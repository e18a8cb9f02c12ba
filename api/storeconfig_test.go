package api_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/store"
)

// These tests moved here from the everest package with the mapping they test: the module config
// is still built as the wire delivers it (everest.ModuleConfig).

func params(t *testing.T, m map[string]any) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// The manager sends every manifest key with its default when the config sets none: the result
// is the EVerest default layout under <etc_dir>/certs.
func TestStoreConfigManifestDefaults(t *testing.T) {
	mc := everest.ModuleConfig{EtcDir: "/opt/ev/etc/everest", Params: params(t, everesttest.ManifestDefaults(t))}
	cfg, warnings := api.StoreConfig(mc.Params, mc.EtcDir)
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	want := store.DefaultConfig("/opt/ev/etc/everest/certs")
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("StoreConfig =\n%+v\nwant\n%+v", cfg, want)
	}
	if got := cfg.CABundlePath(store.CAV2G); got != "/opt/ev/etc/everest/certs/ca/v2g/V2G_ROOT_CA.pem" {
		t.Errorf("V2G bundle %s", got)
	}
	if cd, kd, _ := cfg.LeafDirs(store.LeafCSMS); cd != "/opt/ev/etc/everest/certs/client/csms" || kd != cd {
		t.Errorf("CSMS leaf dirs %s %s", cd, kd)
	}
}

func TestStoreConfigMapping(t *testing.T) {
	mc := everest.ModuleConfig{EtcDir: "/e", Params: params(t, map[string]any{
		"csms_ca_bundle":                   "/abs/csms.pem",        // absolute: as it is
		"v2g_ca_bundle":                    "ca/v2g",               // relative: under the certs root
		"private_key_password":             "s3cret",               // never in a warning
		"max_fs_usage_bytes":               1048576,                // integer
		"garbage_collect_time":             600,                    // seconds
		"csr_expiry":                       "90s",                  // duration string
		"csr_dns_names":                    []string{"cs.example"}, // list
		"verify_firmware_signer":           true,                   // bool
		"no_such_key":                      "x",                    // unknown: warned, ignored
		"max_fs_certificate_store_entries": "many",                 // wrong type: warned, default kept
	})}
	cfg, warnings := api.StoreConfig(mc.Params, mc.EtcDir)
	if cfg.CertsRoot != "/e/certs" {
		t.Errorf("CertsRoot %s", cfg.CertsRoot)
	}
	if got := cfg.CABundlePath(store.CACSMS); got != "/abs/csms.pem" {
		t.Errorf("CSMS bundle %s", got)
	}
	if got := cfg.CABundlePath(store.CAV2G); got != filepath.Join("/e/certs", "ca/v2g") {
		t.Errorf("V2G bundle %s", got)
	}
	if cfg.PrivateKeyPassword != "s3cret" || cfg.MaxStoreBytes != 1048576 || cfg.GCInterval.D() != 10*time.Minute ||
		cfg.CSRExpiry.D() != 90*time.Second || !reflect.DeepEqual(cfg.CSRDNSNames, []string{"cs.example"}) || !cfg.VerifyFirmwareSigner {
		t.Errorf("mapped config %+v", cfg)
	}
	if cfg.MaxStoreEntries != store.DefaultMaxStoreEntries {
		t.Errorf("MaxStoreEntries %d, want the default", cfg.MaxStoreEntries)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "max_fs_certificate_store_entries") || !strings.Contains(warnings[1], "no_such_key") {
		t.Errorf("warnings %q", warnings)
	}
	for _, w := range warnings {
		if strings.Contains(w, "s3cret") {
			t.Errorf("a warning shows the password: %s", w)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// A certs_root of a custom manifest is taken relative to the etc dir.
	mc = everest.ModuleConfig{EtcDir: "/e", Params: params(t, map[string]any{"certs_root": "pki"})}
	if cfg, _ := api.StoreConfig(mc.Params, mc.EtcDir); cfg.CertsRoot != "/e/pki" {
		t.Errorf("certs_root pki → %s", cfg.CertsRoot)
	}
}
