package everest_test

import (
	"testing"

	"github.com/evsesec/evsesec/everest"
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
