package main

// Every required argument of every command of the interface YAML, left out and set to null, is an
// argument error on each of the three ways in: the dispatcher (*api.ArgError), the built binary's
// `evsesec call` (exit 2), and the EVerest wire of a running `evsesec serve` (SchemaValidationError).
// The store's tree is the same afterwards: in particular a CSR call without use_tpm writes no key.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
)

// yamlCommands returns command → argument names of the vendored interface YAML, sorted.
func yamlCommands(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(everesttest.DataDir(), "interfaces-evse_security.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cmds map[string]struct {
			Arguments map[string]any `yaml:"arguments"`
		} `yaml:"cmds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for name, c := range doc.Cmds {
		out[name] = []string{}
		for a := range c.Arguments {
			out[name] = append(out[name], a)
		}
		sort.Strings(out[name])
	}
	return out
}

// validArgs returns, per command of the interface, an argument object that the command accepts
// (it runs and answers a result), built from openssl-made certificates.
func validArgs(p *callPKI, fw string) map[string]map[string]any {
	hash := map[string]any{"hash_algorithm": "SHA256", "issuer_name_hash": p.rootHash.IssuerNameHash,
		"issuer_key_hash": p.rootHash.IssuerKeyHash, "serial_number": p.rootHash.SerialNumber}
	return map[string]map[string]any{
		"install_ca_certificate":               {"certificate": p.sub, "certificate_type": "V2G"},
		"delete_certificate":                   {"certificate_hash_data": hash},
		"update_leaf_certificate":              {"certificate_chain": p.leaf + p.sub, "certificate_type": "V2G"},
		"verify_certificate":                   {"certificate_chain": p.leaf + p.sub, "certificate_types": []string{"V2G"}},
		"get_installed_certificates":           {"certificate_types": []string{"V2GRootCertificate"}},
		"get_v2g_ocsp_request_data":            {},
		"get_mo_ocsp_request_data":             {"certificate_chain": p.leaf + p.sub},
		"update_ocsp_cache":                    {"certificate_hash_data": hash, "ocsp_response": "MAMKAQE="},
		"is_ca_certificate_installed":          {"certificate_type": "V2G"},
		"generate_certificate_signing_request": {"certificate_type": "V2G", "country": "DE", "organization": "EVerest", "common": "CP001", "use_tpm": false},
		"get_leaf_certificate_info":            {"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": false},
		"get_all_valid_certificates_info":      {"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true},
		"get_verify_file":                      {"certificate_type": "V2G"},
		"get_verify_location":                  {"certificate_type": "V2G"},
		"get_leaf_expiry_days_count":           {"certificate_type": "V2G"},
		"verify_file_signature":                {"file_path": fw, "signing_certificate": p.leaf, "signature": "MEUCIQ=="},
	}
}

// requiredCase is one call with one required argument left out or null.
type requiredCase struct {
	command, arg, how string
	args              string // JSON
}

func requiredCases(t *testing.T, valid map[string]map[string]any) []requiredCase {
	t.Helper()
	var cases []requiredCase
	for cmd, names := range yamlCommands(t) {
		full, ok := valid[cmd]
		if !ok {
			t.Fatalf("the test has no arguments for %s", cmd)
		}
		if len(full) != len(names) {
			t.Fatalf("%s: the test's arguments %v are not the interface's %v", cmd, full, names)
		}
		for _, name := range names {
			if _, ok := full[name]; !ok {
				t.Fatalf("%s: the test has no value for %s", cmd, name)
			}
			for _, how := range []string{"missing", "null"} {
				m := map[string]any{}
				for k, v := range full {
					m[k] = v
				}
				if how == "missing" {
					delete(m, name)
				} else {
					m[name] = nil
				}
				cases = append(cases, requiredCase{cmd, name, how, argsJSON(t, m)})
			}
		}
	}
	sort.Slice(cases, func(i, j int) bool {
		a, b := cases[i], cases[j]
		return a.command+a.arg+a.how < b.command+b.arg+b.how
	})
	// generate_certificate_signing_request's use_tpm and the include_ocsp flags are the
	// arguments that used to be read as false.
	found := 0
	for _, c := range cases {
		if c.arg == "use_tpm" || c.arg == "include_ocsp" {
			found++
		}
	}
	if found != 6 {
		t.Fatalf("%d cases of the boolean flags, want 6", found)
	}
	return cases
}

func TestRequiredArgumentsEverywhere(t *testing.T) {
	p := newCallPKI(t)
	fw := filepath.Join(t.TempDir(), "firmware.bin")
	if err := os.WriteFile(fw, []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	valid := validArgs(p, fw)
	cases := requiredCases(t, valid)
	bin := buildBinary(t)

	// The store: a V2G root (openssl-made), so that every command has something to act on.
	root := filepath.Join(t.TempDir(), "certs")
	if out, errOut, code := runBinary(t, bin, "call", "--certs", root, "install_ca_certificate",
		argsJSON(t, map[string]any{"certificate": p.root, "certificate_type": "V2G"})); code != 0 || out != "\"Accepted\"\n" {
		t.Fatalf("install root: exit %d %q %s", code, out, errOut)
	}

	// The service, on the embedded broker, with a fake EVerest caller.
	srv, addr := startServe(t, bin, root)
	caller := everesttest.NewCaller(t, "tcp://"+addr, everest.NewTopics("", "", ""), "ocpp")
	if r, err := caller.Call("is_ca_certificate_installed", map[string]any{"certificate_type": "V2G"}); err != nil || string(r.Retval) != "true" {
		t.Fatalf("service: %+v %v\n%s", r, err, srv.stderr())
	}

	st, err := store.Open(store.DefaultConfig(root), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := api.NewDispatcher(st)

	before := testtool.Snapshot(t, root)
	for _, c := range cases {
		name := c.command + " " + c.how + " " + c.arg
		// The dispatcher.
		_, err := d.Call(context.Background(), c.command, json.RawMessage(c.args))
		var ae *api.ArgError
		if !errors.As(err, &ae) || ae.Arg != c.arg {
			t.Errorf("%s: dispatcher error %v, want an argument error naming %s", name, err, c.arg)
		}
		// The binary.
		out, errOut, code := runBinary(t, bin, "call", "--certs", root, c.command, c.args)
		if code != 2 || out != "" || !strings.Contains(errOut, fmt.Sprintf("%q", c.arg)) || lines(errOut) != 1 {
			t.Errorf("%s: evsesec call exit %d, stdout %q, stderr %q; want exit 2 and one line naming the argument", name, code, out, errOut)
		}
		// The wire.
		r, err := caller.Call(c.command, json.RawMessage(c.args))
		if err != nil {
			t.Errorf("%s: wire: %v", name, err)
		} else if r.Error == nil || r.Error.Type != everest.SchemaValidationError || !strings.Contains(r.Error.Message, c.arg) {
			t.Errorf("%s: wire answered %s, want a SchemaValidationError naming the argument", name, r.Payload)
		}
		if diff := testtool.DiffSnapshots(before, testtool.Snapshot(t, root)); diff != "" {
			t.Fatalf("%s changed the store:\n%s", name, diff)
		}
	}

	// With every argument given, each command runs (so the omission above was the only fault).
	for cmd, args := range valid {
		if _, err := d.Call(context.Background(), cmd, json.RawMessage(argsJSON(t, args))); err != nil {
			t.Errorf("%s with all arguments: %v", cmd, err)
		}
	}
	srv.stop(t)
}
