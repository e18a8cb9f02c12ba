package everest_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/store"
)

func TestEtcDirOf(t *testing.T) {
	for prefix, want := range map[string]string{
		"":                      "/etc/everest",
		"/usr":                  "/etc/everest",
		"/usr/":                 "/etc/everest",
		"/opt/everest/usr":      "/opt/everest/etc/everest",
		"/opt/everest":          "/opt/everest/etc/everest",
		"/usr/local":            "/usr/local/etc/everest",
		"/tmp/TestX/001":        "/tmp/TestX/001/etc/everest",
		"/home/user/build/dist": "/home/user/build/dist/etc/everest",
	} {
		if got := everest.EtcDirOf(prefix); got != want {
			t.Errorf("EtcDirOf(%q) = %q, want %q", prefix, got, want)
		}
	}
	mc := everest.ModuleConfig{EtcDir: "/opt/everest/etc/everest"}
	if got := mc.CertsRoot(); got != "/opt/everest/etc/everest/certs" {
		t.Errorf("CertsRoot = %s", got)
	}
}

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
	cfg, warnings := mc.StoreConfig()
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
	cfg, warnings := mc.StoreConfig()
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
	if cfg, _ := mc.StoreConfig(); cfg.CertsRoot != "/e/pki" {
		t.Errorf("certs_root pki → %s", cfg.CertsRoot)
	}
}

func TestParseConfigResponseShapes(t *testing.T) {
	// Parameters as a name → value object are read too.
	obj := `{"msg_type":"GetConfigResponse","data":{"status":"Ok","type":"Get","response":{"type":"Module","data":{"module_config":{"module_id":"sec","configuration_parameters":{"!module":{"csms_ca_bundle":"x.pem"}}}}}}}`
	mc, err := everest.ParseConfigResponse([]byte(obj))
	if err != nil || string(mc.Params["csms_ca_bundle"]) != `"x.pem"` || mc.ModuleID != "sec" {
		t.Errorf("object parameters: %+v, %v", mc, err)
	}
	// No module parameters at all: an empty config.
	none := `{"msg_type":"GetConfigResponse","data":{"status":"Ok","response":{"data":{"module_config":{"configuration_parameters":{"main":[]}}}}}}`
	if mc, err := everest.ParseConfigResponse([]byte(none)); err != nil || len(mc.Params) != 0 {
		t.Errorf("no parameters: %+v, %v", mc, err)
	}
	for name, bad := range map[string]string{
		"status":   `{"msg_type":"GetConfigResponse","data":{"status":"Error","status_info":"unknown module"}}`,
		"msg_type": `{"msg_type":"GetConfig","data":{}}`,
		"json":     `{"msg_type":`,
		"params":   `{"msg_type":"GetConfigResponse","data":{"response":{"data":{"module_config":{"configuration_parameters":{"!module":5}}}}}}`,
	} {
		if _, err := everest.ParseConfigResponse([]byte(bad)); err == nil {
			t.Errorf("%s: no error for %s", name, bad)
		}
	}
}
