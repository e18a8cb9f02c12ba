package api_test

// Fuzz targets of the dispatcher: every command with arbitrary JSON arguments, and arbitrary
// command names. Whatever the input, Call returns either a JSON result of the command's result
// type or an *ArgError (an unknown name: ErrUnknownCommand), and never panics. Seeds are valid
// and invalid arguments of every command made from the test PKI; the committed corpus is in
// testdata/fuzz/. scripts/fuzz-ci.sh runs each target for a bounded time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// fuzzFastFS is the OS filesystem without fsync: fuzzing runs thousands of writes a second, and
// durability is not what it tests.
type fuzzFastFS struct{ store.OSFS }

func (fuzzFastFS) SyncDir(string) error { return nil }

func (f fuzzFastFS) CreateTemp(dir, pattern string) (store.File, error) {
	file, err := f.OSFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return fuzzNoSyncFile{file}, nil
}

type fuzzNoSyncFile struct{ store.File }

func (fuzzNoSyncFile) Sync() error { return nil }

// fuzzDispatcher returns a dispatcher on a store holding the standard test PKI, and seeds: valid
// arguments of every command.
func fuzzDispatcher(f *testing.F) (*api.Dispatcher, map[string][]string) {
	f.Helper()
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		f.Fatal(err)
	}
	root := f.TempDir()
	_, err = p.WriteLayout(root, "")
	if err != nil {
		f.Fatal(err)
	}
	s, err := store.Open(store.DefaultConfig(root), store.Options{FS: fuzzFastFS{}})
	if err != nil {
		f.Fatal(err)
	}
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return string(b)
	}
	hash := func(c, issuer *testpki.Issued) map[string]string {
		h, err := certs.ComputeHashData(c.Cert, issuer.Cert, certs.SHA256)
		if err != nil {
			f.Fatal(err)
		}
		return map[string]string{"hash_algorithm": string(h.Algorithm), "issuer_name_hash": h.IssuerNameHash, "issuer_key_hash": h.IssuerKeyHash, "serial_number": h.SerialNumber}
	}
	fw, err := os.CreateTemp(f.TempDir(), "firmware")
	if err != nil {
		f.Fatal(err)
	}
	fw.WriteString("firmware")
	fw.Close()
	seeds := map[string][]string{
		"install_ca_certificate": {js(map[string]any{"certificate": string(p.V2GRoot.CertPEM()), "certificate_type": "V2G"}),
			js(map[string]any{"certificate": string(p.MOSubCA1.CertPEM()), "certificate_type": "MO"})},
		"delete_certificate": {js(map[string]any{"certificate_hash_data": hash(p.CPOSubCA1, p.V2GRoot)}),
			js(map[string]any{"certificate_hash_data": hash(p.CSMSLeaf, p.CSMSRoot)})},
		"update_leaf_certificate": {js(map[string]any{"certificate_chain": string(p.SECCLeaf.ChainPEM()), "certificate_type": "V2G"}),
			js(map[string]any{"certificate_chain": string(p.CSMSLeaf.CertPEM()), "certificate_type": "CSMS"})},
		"generate_certificate_signing_request": {js(map[string]any{"certificate_type": "V2G", "country": "DE", "organization": "Pionix", "common": "SECC", "use_tpm": false})},
		"get_leaf_certificate_info":            {js(map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true}), js(map[string]any{"certificate_type": "CSMS", "encoding": "DER"})},
		"get_all_valid_certificates_info":      {js(map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true})},
		"get_leaf_expiry_days_count":           {js(map[string]any{"certificate_type": "CSMS"})},
		"get_v2g_ocsp_request_data":            {"{}"},
		"get_mo_ocsp_request_data":             {js(map[string]any{"certificate_chain": string(p.Contract.ChainPEM())})},
		"update_ocsp_cache":                    {js(map[string]any{"certificate_hash_data": hash(p.SECCLeaf, p.CPOSubCA2), "ocsp_response": "MAMKAQE="})},
		"verify_file_signature":                {js(map[string]any{"file_path": fw.Name(), "signing_certificate": string(p.FirmwareSigner.CertPEM()), "signature": "MEUCIQ=="})},
		"certificate_signing_request_failed":   {js(map[string]any{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n", "certificate_type": "CSMS"})},
		"verify_firmware_signer":               {js(map[string]any{"signing_certificate": string(p.FirmwareSigner.CertPEM())})},
		"garbage_collect":                      {"{}", "null"},
		"update_certificate_links":             {""},
		"verify_certificate":                   {js(map[string]any{"certificate_chain": string(p.SECCLeaf.ChainPEM()), "certificate_types": []string{"V2G", "MO"}})},
		"get_installed_certificates":           {js(map[string]any{"certificate_types": []string{"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "MFRootCertificate", "V2GCertificateChain"}})},
		"is_ca_certificate_installed":          {js(map[string]any{"certificate_type": "MF"})},
		"get_verify_file":                      {js(map[string]any{"certificate_type": "CSMS"})},
		"get_verify_location":                  {js(map[string]any{"certificate_type": "V2G"})},
	}
	return api.NewDispatcher(s), seeds
}

// fuzzHang is how long one call may take before the fuzz target calls it hung.
const fuzzHang = 10 * time.Second

// fuzzEnums are the values a command returning an enum string may return.
var fuzzEnums = map[string][]string{
	"install_ca_certificate":  {"InvalidSignature", "InvalidCertificateChain", "InvalidFormat", "InvalidCommonName", "NoRootCertificateInstalled", "Expired", "CertificateStoreMaxLengthExceeded", "WriteError", "Accepted"},
	"update_leaf_certificate": {"InvalidSignature", "InvalidCertificateChain", "InvalidFormat", "InvalidCommonName", "NoRootCertificateInstalled", "Expired", "CertificateStoreMaxLengthExceeded", "WriteError", "Accepted"},
	"delete_certificate":      {"Accepted", "Failed", "NotFound"},
	"verify_certificate":      {"Valid", "Expired", "InvalidSignature", "IssuerNotFound", "InvalidLeafSignature", "InvalidChain", "Unknown"},
	"verify_firmware_signer":  {"Valid", "Expired", "InvalidSignature", "IssuerNotFound", "InvalidLeafSignature", "InvalidChain", "Unknown"},
}

// fuzzBools are the commands whose result is a boolean.
var fuzzBools = map[string]bool{"is_ca_certificate_installed": true, "verify_file_signature": true, "certificate_signing_request_failed": true, "update_certificate_links": true}

// fuzzCheckResult checks that out has the shape of command name's result.
func fuzzCheckResult(t *testing.T, name string, out json.RawMessage) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("%s: result %q is not JSON", name, out)
	}
	if vals, ok := fuzzEnums[name]; ok {
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("%s: result %s is not a string", name, out)
		}
		for _, v := range vals {
			if v == s {
				return
			}
		}
		t.Fatalf("%s: result %q is not one of the enum's values", name, s)
	}
	if fuzzBools[name] {
		var b bool
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("%s: result %s is not a boolean", name, out)
		}
	}
	switch name {
	case "update_ocsp_cache":
		if string(out) != "null" {
			t.Fatalf("%s: result %s, want null", name, out)
		}
	case "get_leaf_expiry_days_count":
		var n int
		if err := json.Unmarshal(out, &n); err != nil {
			t.Fatalf("%s: result %s is not an integer", name, out)
		}
	case "get_verify_file", "get_verify_location":
		var p string
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("%s: result %s is not a string", name, out)
		}
		if p != "" {
			if _, err := os.Stat(p); err != nil && errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s: returned %s, which does not exist", name, p)
			}
		}
	}
}

// fuzzCheckError checks that a failed call failed cleanly.
func fuzzCheckError(t *testing.T, name string, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "internal error") {
		t.Fatalf("%s panicked: %v", name, err)
	}
	var ae *api.ArgError
	if !errors.As(err, &ae) && !errors.Is(err, api.ErrUnknownCommand) {
		t.Fatalf("%s: error %v is neither an ArgError nor an unknown command", name, err)
	}
}

// FuzzDispatcherArgs calls command number idx (of api.Commands) with arbitrary JSON.
func FuzzDispatcherArgs(f *testing.F) {
	d, seeds := fuzzDispatcher(f)
	commands := api.Commands()
	for i, name := range commands {
		for _, s := range seeds[name] {
			f.Add(uint8(i), []byte(s))
		}
		for _, s := range []string{"", "null", "{}", "[]", `{"certificate_type":"MO"}`, `{"certificate_type":7}`, `{"certificate_hash_data":{}}`, `{`, "\x00", `{"certificate":"` + strings.Repeat("A", 100) + `"}`} {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, idx uint8, args []byte) {
		name := commands[int(idx)%len(commands)]
		// A call that hangs crashes the worker with the input, so the fuzzer keeps it.
		watchdog := time.AfterFunc(fuzzHang, func() { panic(fmt.Sprintf("%s hung for %v on %q", name, fuzzHang, args)) })
		defer watchdog.Stop()
		out, err := d.Call(context.Background(), name, args)
		if err != nil {
			fuzzCheckError(t, name, err)
			return
		}
		fuzzCheckResult(t, name, out)
	})
}

// FuzzDispatcherCommand calls arbitrary command names: only the interface's names run.
func FuzzDispatcherCommand(f *testing.F) {
	d, _ := fuzzDispatcher(f)
	for _, name := range api.Commands() {
		f.Add(name)
	}
	f.Add("install_ca_certificate\x00")
	f.Add("")
	f.Add("Install_CA_Certificate")
	known := map[string]bool{}
	for _, n := range api.Commands() {
		known[n] = true
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := d.Call(context.Background(), name, []byte("{}"))
		if !known[name] {
			if !errors.Is(err, api.ErrUnknownCommand) {
				t.Fatalf("unknown command %q: %s, %v", name, out, err)
			}
			return
		}
		if err != nil {
			fuzzCheckError(t, name, err)
			return
		}
		fuzzCheckResult(t, name, out)
	})
}
