package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/store"
)

// Every release since 2024.9.0 maps to the interface version in force at it, and the version
// read off that release's interface definition is the same one.
func TestInterfaceVersions(t *testing.T) {
	for release, want := range map[string]string{
		"2024.9.0": "2024.9.0", "2024.10.0": "2024.10.0", "2024.11.0": "2024.11.0", "2025.1.0": "2024.11.0",
		"2025.3.0": "2024.11.0", "2025.4.0": "2025.4.0", "2025.5.0": "2025.4.0", "2025.6.0": "2025.6.0",
		"2025.7.0": "2025.6.0", "2025.10.0": "2025.6.0", "2025.12.0": "2025.6.0", "2026.02.0": "2025.6.0",
		"2024.6.0": "2024.9.0",
	} {
		iv := api.InterfaceOfRelease(release)
		if iv.Since != want {
			t.Errorf("InterfaceOfRelease(%s) = %s, want %s", release, iv.Since, want)
		}
		if release == "2024.6.0" { // before the history starts: no definition to derive
			continue
		}
		fromDef, err := api.InterfaceOfDefinition(everesttest.InterfaceDefinition(t, release))
		if err != nil || fromDef != iv {
			t.Errorf("InterfaceOfDefinition(%s) = %+v, %v; want %+v", release, fromDef, err, iv)
		}
	}
	latest, err := api.InterfaceOfDefinition(everesttest.InterfaceDefinition(t, "2099.1.0"))
	if err != nil || latest != api.LatestInterface() || !latest.StoreUpdateVar || !latest.VerifyTypesList {
		t.Errorf("the vendored interface is %+v, %v; want the latest", latest, err)
	}
	if _, err := api.InterfaceOfDefinition(json.RawMessage(`{"cmds":{"other":{}}}`)); err == nil {
		t.Error("another interface's definition accepted")
	}
}

// recorder is a CallHandler that keeps the arguments it got and answers res.
type recorder struct {
	args json.RawMessage
	res  string
}

func (r *recorder) Call(_ context.Context, _ string, args json.RawMessage) (json.RawMessage, error) {
	r.args = args
	return json.RawMessage(r.res), nil
}

// A Versioned handler takes what each release's callers send and answers in its types.
func TestVersionedHandler(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		release, args, want string
	}{
		// Before 2025.4.0 the callers send one type; every release's callers may.
		{"2025.1.0", `{"certificate_chain":"x","certificate_type":"CSMS"}`, `{"certificate_chain":"x","certificate_types":["CSMS"]}`},
		{"2025.10.0", `{"certificate_chain":"x","certificate_type":"V2G"}`, `{"certificate_chain":"x","certificate_types":["V2G"]}`},
		{"2025.10.0", `{"certificate_chain":"x","certificate_types":["MO"]}`, `{"certificate_chain":"x","certificate_types":["MO"]}`},
		{"2025.1.0", `{"certificate_chain":"x","certificate_type":null}`, `{"certificate_chain":"x","certificate_type":null}`},
		{"2025.1.0", `not json`, `not json`},
	} {
		rec := &recorder{res: `"Valid"`}
		if _, err := api.InterfaceOfRelease(c.release).Serve(rec).Call(ctx, "verify_certificate", json.RawMessage(c.args)); err != nil || string(rec.args) != c.want {
			t.Errorf("%s: verify_certificate(%s) reached the dispatcher as %s, %v; want %s", c.release, c.args, rec.args, err, c.want)
		}
	}
	info := `{"status":"Accepted","info":{"key":"/k","certificate_root":"PEM","certificate_count":1}}`
	for release, want := range map[string]string{
		"2024.9.0":  `{"info":{"certificate_count":1,"key":"/k"},"status":"Accepted"}`,
		"2024.10.0": info,
	} {
		h := api.InterfaceOfRelease(release).Serve(&recorder{res: info})
		res, err := h.Call(ctx, "get_leaf_certificate_info", json.RawMessage(`{}`))
		if err != nil || string(res) != want {
			t.Errorf("%s: get_leaf_certificate_info = %s, %v; want %s", release, res, err, want)
		}
		if h.Version().Since != release {
			t.Errorf("Version %s", h.Version().Since)
		}
	}
}

// The failure answers of the generations without error results are valid results of their
// commands, and mean failure.
func TestFailureResults(t *testing.T) {
	schemas := everesttest.LoadSchemas(t)
	for _, cmd := range schemas.Commands() {
		res := api.FailureResult(cmd)
		if err := schemas.ValidateResult(cmd, res); err != nil {
			t.Errorf("%s: failure result %s: %v", cmd, res, err)
		}
		if strings.Contains(string(res), "Accepted") || string(res) == "true" || string(res) == `"Valid"` {
			t.Errorf("%s: failure result %s means success", cmd, res)
		}
	}
	if got := string(api.FailureResult("garbage_collect")); got != "null" {
		t.Errorf("a command outside the interface: %s", got)
	}
}

// StoreUpdateFor publishes only the events the variable can express.
func TestStoreUpdateFor(t *testing.T) {
	if u, ok := api.StoreUpdateFor(store.Event{Kind: store.EventInstall, Operation: store.OperationInstalled, CAType: store.CAMO}); !ok ||
		u != (api.CertificateStoreUpdate{Operation: store.OperationInstalled, CaCertificateType: store.CAMO}) {
		t.Errorf("install: %+v %v", u, ok)
	}
	if _, ok := api.StoreUpdateFor(store.Event{Kind: store.EventInstall}); ok {
		t.Error("an event without an operation is published")
	}
}
