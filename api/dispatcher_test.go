package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/evsesec/evsesec/internal/testtool"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// caPKI is a root with a sub-CA and a leaf, and a second root with the first one's DN.
type caPKI struct {
	root, sub, leaf, twin *testpki.Issued
	twinSub               *testpki.Issued // issued by twin, which is never installed here
}

func newCAPKI(t *testing.T) *caPKI {
	t.Helper()
	ca := func(parent *testpki.Issued, cn string) *testpki.Issued {
		spec := testpki.Spec{CommonName: cn, Organization: "EVerest", Country: "DE", IsCA: true, MaxPathLen: -1}
		var c *testpki.Issued
		var err error
		if parent == nil {
			c, err = testpki.SelfSigned(spec)
		} else {
			c, err = parent.Issue(spec)
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := &caPKI{root: ca(nil, "V2GRootCA"), twin: ca(nil, "V2GRootCA")}
	p.sub = ca(p.root, "CPOSubCA1")
	p.twinSub = ca(p.twin, "OtherSubCA")
	leaf, err := p.sub.Issue(testpki.Spec{CommonName: "SECCCert", DomainComponent: "CPO"})
	if err != nil {
		t.Fatal(err)
	}
	p.leaf = leaf
	return p
}

// newDispatcher opens a store in the default layout under a new root.
func newDispatcher(t *testing.T) (*api.Dispatcher, string) {
	t.Helper()
	root := t.TempDir()
	s, err := store.Open(store.DefaultConfig(root), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return api.NewDispatcher(s), root
}

// call runs a command with Go-valued arguments (marshalled) or a raw JSON string.
func call(t *testing.T, d *api.Dispatcher, name string, args any) (string, error) {
	t.Helper()
	var raw []byte
	switch a := args.(type) {
	case string:
		raw = []byte(a)
	case nil:
	default:
		var err error
		if raw, err = json.Marshal(a); err != nil {
			t.Fatal(err)
		}
	}
	out, err := d.Call(context.Background(), name, raw)
	return string(out), err
}

func mustCall(t *testing.T, d *api.Dispatcher, name string, args any) string {
	t.Helper()
	out, err := call(t, d, name, args)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func hashJSON(h certs.HashData) map[string]string {
	return map[string]string{"hash_algorithm": string(h.Algorithm), "issuer_name_hash": h.IssuerNameHash, "issuer_key_hash": h.IssuerKeyHash, "serial_number": h.SerialNumber}
}

// TestCACommandsBadInput runs every CA command with bad arguments and bad values. Bad arguments
// are an *api.ArgError naming the argument, and no store operation runs; bad values give the
// command's result code. Either way the store tree is unchanged, byte for byte and mode for mode.
func TestCACommandsBadInput(t *testing.T) {
	p := newCAPKI(t)
	rootPEM, leafPEM := string(p.root.CertPEM()), string(p.leaf.CertPEM())
	rootHash, _ := certs.ComputeHashData(p.root.Cert, p.root.Cert, certs.SHA256)
	unknown := hashJSON(rootHash)
	unknown["serial_number"] = "3046"
	noSerial := hashJSON(rootHash)
	delete(noSerial, "serial_number")
	lowerAlg := hashJSON(rootHash)
	lowerAlg["hash_algorithm"] = "sha256"
	md5 := hashJSON(rootHash)
	md5["hash_algorithm"] = "MD5"

	type tc struct {
		cmd    string
		args   any    // Go value (marshalled) or raw JSON string
		argErr string // the argument the ArgError names ("-" for the whole object); "" when a result is expected
		want   string // the JSON result
	}
	tests := []tc{
		// install_ca_certificate
		{"install_ca_certificate", `{}`, "certificate", ""},
		{"install_ca_certificate", `null`, "certificate", ""},
		{"install_ca_certificate", ``, "certificate", ""},
		{"install_ca_certificate", map[string]any{"certificate": rootPEM}, "certificate_type", ""},
		{"install_ca_certificate", map[string]any{"certificate": nil, "certificate_type": "V2G"}, "certificate", ""},
		{"install_ca_certificate", map[string]any{"certificate": 5, "certificate_type": "V2G"}, "certificate", ""},
		{"install_ca_certificate", map[string]any{"certificate": rootPEM, "certificate_type": "v2g"}, "certificate_type", ""},
		{"install_ca_certificate", map[string]any{"certificate": rootPEM, "certificate_type": "V2GRootCertificate"}, "certificate_type", ""},
		{"install_ca_certificate", map[string]any{"certificate": rootPEM, "certificate_type": ""}, "certificate_type", ""},
		{"install_ca_certificate", map[string]any{"certificate": rootPEM, "certificate_type": []string{"V2G"}}, "certificate_type", ""},
		{"install_ca_certificate", `{"certificate": "x", "certificate_type": "V2G"`, "-", ""},
		{"install_ca_certificate", `["V2G"]`, "-", ""},
		{"install_ca_certificate", `"V2G"`, "-", ""},
		{"install_ca_certificate", map[string]any{"certificate": "", "certificate_type": "V2G"}, "", `"InvalidFormat"`},
		{"install_ca_certificate", map[string]any{"certificate": "-----BEGIN CERTIFICATE-----InvalidCertificate-----END CERTIFICATE-----", "certificate_type": "CSMS"}, "", `"InvalidFormat"`},
		{"install_ca_certificate", map[string]any{"certificate": "\u0000\xff garbage", "certificate_type": "MF"}, "", `"InvalidFormat"`},
		{"install_ca_certificate", map[string]any{"certificate": leafPEM, "certificate_type": "V2G"}, "", `"InvalidFormat"`},
		{"install_ca_certificate", map[string]any{"certificate": string(p.twinSub.CertPEM()), "certificate_type": "MO"}, "", `"NoRootCertificateInstalled"`},
		// delete_certificate
		{"delete_certificate", `{}`, "certificate_hash_data", ""},
		{"delete_certificate", map[string]any{"certificate_hash_data": "abc"}, "certificate_hash_data", ""},
		{"delete_certificate", map[string]any{"certificate_hash_data": noSerial}, "certificate_hash_data", ""},
		{"delete_certificate", map[string]any{"certificate_hash_data": lowerAlg}, "certificate_hash_data.hash_algorithm", ""},
		{"delete_certificate", map[string]any{"certificate_hash_data": md5}, "certificate_hash_data.hash_algorithm", ""},
		{"delete_certificate", `{"certificate_hash_data": {"hash_algorithm": "SHA256"`, "-", ""},
		{"delete_certificate", map[string]any{"certificate_hash_data": unknown}, "", `"NotFound"`},
		{"delete_certificate", map[string]any{"certificate_hash_data": map[string]string{"hash_algorithm": "SHA256", "issuer_name_hash": "", "issuer_key_hash": "", "serial_number": ""}}, "", `"NotFound"`},
		{"delete_certificate", map[string]any{"certificate_hash_data": map[string]string{"hash_algorithm": "SHA256", "issuer_name_hash": "zz", "issuer_key_hash": "UnknownKeyHash", "serial_number": "3046"}}, "", `"NotFound"`},
		// verify_certificate
		{"verify_certificate", map[string]any{"certificate_types": []string{"V2G"}}, "certificate_chain", ""},
		{"verify_certificate", map[string]any{"certificate_chain": leafPEM}, "certificate_types", ""},
		{"verify_certificate", map[string]any{"certificate_chain": leafPEM, "certificate_types": "V2G"}, "certificate_types", ""},
		{"verify_certificate", map[string]any{"certificate_chain": leafPEM, "certificate_types": []string{"V2G", "V2GRootCertificate"}}, "certificate_types", ""},
		{"verify_certificate", map[string]any{"certificate_chain": "", "certificate_types": []string{"V2G"}}, "", `"Unknown"`},
		{"verify_certificate", map[string]any{"certificate_chain": "InvalidCertificate", "certificate_types": []string{"MO"}}, "", `"Unknown"`},
		{"verify_certificate", map[string]any{"certificate_chain": leafPEM, "certificate_types": []string{}}, "", `"IssuerNotFound"`},
		{"verify_certificate", map[string]any{"certificate_chain": leafPEM + string(p.sub.CertPEM()), "certificate_types": []string{"V2G"}}, "", `"Valid"`},
		// get_installed_certificates
		{"get_installed_certificates", `{}`, "certificate_types", ""},
		{"get_installed_certificates", map[string]any{"certificate_types": []string{"V2GRoot"}}, "certificate_types", ""},
		{"get_installed_certificates", map[string]any{"certificate_types": "V2GRootCertificate"}, "certificate_types", ""},
		{"get_installed_certificates", map[string]any{"certificate_types": []string{}}, "", `{"status":"NotFound","certificate_hash_data_chain":[]}`},
		{"get_installed_certificates", map[string]any{"certificate_types": []string{"MORootCertificate", "V2GCertificateChain"}}, "", `{"status":"NotFound","certificate_hash_data_chain":[]}`},
		// is_ca_certificate_installed, get_verify_file, get_verify_location
		{"is_ca_certificate_installed", `{}`, "certificate_type", ""},
		{"is_ca_certificate_installed", map[string]any{"certificate_type": "CSMSRootCertificate"}, "certificate_type", ""},
		{"is_ca_certificate_installed", map[string]any{"certificate_type": "MO"}, "", `false`},
		{"get_verify_file", map[string]any{"certificate_type": "csms"}, "certificate_type", ""},
		{"get_verify_file", map[string]any{"certificate_type": 1}, "certificate_type", ""},
		{"get_verify_file", map[string]any{"certificate_type": "MF"}, "", `""`},
		{"get_verify_location", map[string]any{}, "certificate_type", ""},
		{"get_verify_location", map[string]any{"certificate_type": "LEAF"}, "certificate_type", ""},
		{"get_verify_location", map[string]any{"certificate_type": "MO"}, "", `""`},
	}
	d, root := newDispatcher(t)
	mustCall(t, d, "install_ca_certificate", map[string]any{"certificate": rootPEM, "certificate_type": "V2G"})
	before := testtool.Snapshot(t, root)
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%02d %s", i, tc.cmd), func(t *testing.T) {
			out, err := call(t, d, tc.cmd, tc.args)
			if tc.argErr == "" {
				if err != nil || out != tc.want {
					t.Fatalf("= %s, %v; want %s", out, err, tc.want)
				}
			} else {
				var ae *api.ArgError
				if !errors.As(err, &ae) || out != "" {
					t.Fatalf("= %q, %v; want an *api.ArgError", out, err)
				}
				wantArg := tc.argErr
				if wantArg == "-" {
					wantArg = ""
				}
				if ae.Arg != wantArg || ae.Command != tc.cmd || !strings.Contains(err.Error(), tc.cmd) {
					t.Errorf("ArgError %+v, want argument %q", ae, wantArg)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
			}
			if d := testtool.DiffSnapshots(before, testtool.Snapshot(t, root)); d != "" {
				t.Errorf("the store tree changed:\n%s", d)
			}
		})
	}

	if _, err := call(t, d, "install_ca", `{}`); !errors.Is(err, api.ErrUnknownCommand) {
		t.Errorf("unknown command: %v", err)
	}
}

// The results on the wire: strings as JSON strings, booleans, and get_installed_certificates with
// the interface's field names; the hash data it returns deletes the certificate.
func TestCACommandsResults(t *testing.T) {
	p := newCAPKI(t)
	d, root := newDispatcher(t)
	for _, c := range []*testpki.Issued{p.root, p.sub} {
		if out := mustCall(t, d, "install_ca_certificate", map[string]any{"certificate": string(c.CertPEM()), "certificate_type": "V2G"}); out != `"Accepted"` {
			t.Fatalf("install = %s", out)
		}
	}
	if out := mustCall(t, d, "is_ca_certificate_installed", map[string]any{"certificate_type": "V2G"}); out != "true" {
		t.Errorf("is_ca_certificate_installed = %s", out)
	}
	bundle := filepath.Join(root, "ca", "v2g", "V2G_ROOT_CA.pem")
	want, _ := json.Marshal(bundle)
	for _, cmd := range []string{"get_verify_file", "get_verify_location"} {
		if out := mustCall(t, d, cmd, map[string]any{"certificate_type": "V2G"}); out != string(want) {
			t.Errorf("%s = %s, want %s", cmd, out, want)
		}
	}
	rootHash, _ := certs.ComputeHashData(p.root.Cert, p.root.Cert, certs.SHA256)
	subHash, _ := certs.ComputeHashData(p.sub.Cert, p.root.Cert, certs.SHA256)
	wantList := fmt.Sprintf(`{"status":"Accepted","certificate_hash_data_chain":[{"certificate_type":"V2GRootCertificate",`+
		`"certificate_hash_data":{"hash_algorithm":"SHA256","issuer_name_hash":"%s","issuer_key_hash":"%s","serial_number":"%s"},`+
		`"child_certificate_hash_data":[{"hash_algorithm":"SHA256","issuer_name_hash":"%s","issuer_key_hash":"%s","serial_number":"%s"}]}]}`,
		rootHash.IssuerNameHash, rootHash.IssuerKeyHash, rootHash.SerialNumber, subHash.IssuerNameHash, subHash.IssuerKeyHash, subHash.SerialNumber)
	list := mustCall(t, d, "get_installed_certificates", map[string]any{"certificate_types": []string{"V2GRootCertificate"}})
	if list != wantList {
		t.Errorf("get_installed_certificates =\n%s\nwant\n%s", list, wantList)
	}
	verify := map[string]any{"certificate_chain": string(p.leaf.CertPEM()), "certificate_types": []string{"MO", "V2G"}}
	if out := mustCall(t, d, "verify_certificate", verify); out != `"Valid"` {
		t.Errorf("verify_certificate = %s", out)
	}
	// Delete the sub-CA with the hash data as listed, in upper case.
	var res api.GetInstalledCertificatesResult
	if err := json.Unmarshal([]byte(list), &res); err != nil {
		t.Fatal(err)
	}
	h := res.Chains[0].Children[0]
	h.IssuerKeyHash = strings.ToUpper(h.IssuerKeyHash)
	if out := mustCall(t, d, "delete_certificate", map[string]any{"certificate_hash_data": h}); out != `"Accepted"` {
		t.Errorf("delete_certificate = %s", out)
	}
	if out := mustCall(t, d, "delete_certificate", map[string]any{"certificate_hash_data": h}); out != `"NotFound"` {
		t.Errorf("second delete_certificate = %s", out)
	}
	if out := mustCall(t, d, "verify_certificate", verify); out != `"IssuerNotFound"` {
		t.Errorf("verify_certificate after deleting the sub-CA = %s", out)
	}
}

// The dispatcher is used by several transports at once.
func TestCACommandsConcurrent(t *testing.T) {
	p := newCAPKI(t)
	d, _ := newDispatcher(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := []*testpki.Issued{p.root, p.twin}[i%2]
			if out, err := call(t, d, "install_ca_certificate", map[string]any{"certificate": string(c.CertPEM()), "certificate_type": "CSMS"}); err != nil || out != `"Accepted"` {
				t.Errorf("install = %s, %v", out, err)
			}
			if _, err := call(t, d, "get_installed_certificates", map[string]any{"certificate_types": []string{"CSMSRootCertificate"}}); err != nil {
				t.Error(err)
			}
			if _, err := call(t, d, "is_ca_certificate_installed", `{"certificate_type":"bad"}`); err == nil {
				t.Error("bad enum accepted")
			}
		}(i)
	}
	wg.Wait()
	var res api.GetInstalledCertificatesResult
	if err := json.Unmarshal([]byte(mustCall(t, d, "get_installed_certificates", map[string]any{"certificate_types": []string{"CSMSRootCertificate"}})), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Chains) != 2 {
		t.Errorf("%d chains, want 2", len(res.Chains))
	}
}
