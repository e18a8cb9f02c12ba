package everest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/testpki"
)

// The module suite drives the module the way EVerest does: a fake manager configures it, fake
// OCPP and ISO 15118 modules call every command of the interface, and every result and variable
// is checked against the interface's schemas. It runs against the embedded broker and against
// Debian's mosquitto.

func TestModuleSuiteEmbeddedBroker(t *testing.T) {
	runModuleSuite(t, everesttest.StartBroker(t).URL())
}

func TestModuleSuiteMosquitto(t *testing.T) {
	runModuleSuite(t, everesttest.StartMosquitto(t))
}

func runModuleSuite(t *testing.T, url string) {
	schemas := everesttest.LoadSchemas(t)
	m := startModule(t, url, moduleOptions{})

	t.Run("handshake", func(t *testing.T) {
		if got := m.manager.WaitReady(t, 20*time.Second); got != `{"msg_type":"ModuleReady","data":true}` {
			t.Errorf("ModuleReady payload %s", got)
		}
		reqs := m.manager.ConfigRequests()
		if len(reqs) == 0 {
			t.Fatal("no config request")
		}
		for _, r := range reqs {
			if r != `{"msg_type":"GetConfig","data":{"type":"Get","origin":"evse_security","request":{"type":"Module"}}}` {
				t.Errorf("config request %s", r)
			}
		}
		m.waitReady(t)
	})

	ocpp := everesttest.NewCaller(t, url, m.topics, "ocpp")
	iso := everesttest.NewCaller(t, url, m.topics, "iso15118_charger")
	call := func(t *testing.T, c *everesttest.Caller, cmd string, args any) json.RawMessage {
		t.Helper()
		a := raw(t, args)
		if err := schemas.ValidateArgs(cmd, a); err != nil {
			t.Fatalf("test arguments do not fit the interface: %v", err)
		}
		r, err := c.Call(cmd, a)
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != nil {
			t.Fatalf("%s: error reply %+v", cmd, r.Error)
		}
		if err := schemas.ValidateResult(cmd, r.Retval); err != nil {
			t.Errorf("%s: result %s does not fit the interface: %v", cmd, r.Retval, err)
		}
		return r.Retval
	}
	// wantVar waits for certificate_store_update on both callers and checks the exact message.
	wantVar := func(t *testing.T, value string) {
		t.Helper()
		for _, c := range []*everesttest.Caller{ocpp, iso} {
			v, err := c.WaitVar(10 * time.Second)
			if err != nil {
				t.Fatalf("%s: %v (want %s)", c.Origin, err, value)
			}
			if v.Topic != "everest/modules/evse_security/impl/main/var/certificate_store_update" {
				t.Errorf("var topic %s", v.Topic)
			}
			if want := `{"msg_type":"Var","data":{"data":` + value + `}}`; string(v.Payload) != want {
				t.Errorf("var message %s, want %s", v.Payload, want)
			}
			if err := schemas.ValidateVar(everest.StoreUpdateVar, v.Value); err != nil {
				t.Errorf("var value %s does not fit the interface: %v", v.Value, err)
			}
		}
	}
	p, l := m.tree.pki, m.tree.layout
	seccChain, err := os.ReadFile(l.SECCChain)
	if err != nil {
		t.Fatal(err)
	}
	contractChain, err := os.ReadFile(l.ContractChain)
	if err != nil {
		t.Fatal(err)
	}
	certsRoot := filepath.Join(m.prefix, "etc", "everest", "certs")
	covered := map[string]bool{}
	run := func(name string, f func(t *testing.T)) {
		covered[name] = true
		t.Run(name, f)
	}

	run("is_ca_certificate_installed", func(t *testing.T) {
		if got := call(t, ocpp, "is_ca_certificate_installed", map[string]any{"certificate_type": "V2G"}); string(got) != "true" {
			t.Errorf("got %s", got)
		}
	})
	run("get_installed_certificates", func(t *testing.T) {
		got := call(t, ocpp, "get_installed_certificates", map[string]any{"certificate_types": []string{"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "MFRootCertificate", "V2GCertificateChain"}})
		var res struct {
			Status string            `json:"status"`
			Chains []json.RawMessage `json:"certificate_hash_data_chain"`
		}
		if err := json.Unmarshal(got, &res); err != nil || res.Status != "Accepted" || len(res.Chains) < 5 {
			t.Errorf("got %s", got)
		}
	})
	run("get_verify_file", func(t *testing.T) {
		got := call(t, ocpp, "get_verify_file", map[string]any{"certificate_type": "CSMS"})
		if want := raw(t, filepath.Join(certsRoot, "ca/csms/CSMS_ROOT_CA.pem")); string(got) != string(want) {
			t.Errorf("got %s, want %s (the store under <prefix>/etc/everest/certs)", got, want)
		}
	})
	run("get_verify_location", func(t *testing.T) {
		var path string
		if err := json.Unmarshal(call(t, ocpp, "get_verify_location", map[string]any{"certificate_type": "V2G"}), &path); err != nil || !strings.HasPrefix(path, certsRoot) {
			t.Errorf("got %q", path)
		}
	})
	run("verify_certificate", func(t *testing.T) {
		if got := call(t, ocpp, "verify_certificate", map[string]any{"certificate_chain": string(seccChain), "certificate_types": []string{"V2G"}}); string(got) != `"Valid"` {
			t.Errorf("got %s", got)
		}
	})
	run("get_leaf_certificate_info", func(t *testing.T) {
		got := call(t, iso, "get_leaf_certificate_info", map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true})
		var res struct {
			Status string `json:"status"`
			Info   struct {
				Key   string `json:"key"`
				Count int    `json:"certificate_count"`
			} `json:"info"`
		}
		if err := json.Unmarshal(got, &res); err != nil || res.Status != "Accepted" || res.Info.Key != l.SECCLeafKey || res.Info.Count != 3 {
			t.Errorf("got %s", got)
		}
	})
	run("get_all_valid_certificates_info", func(t *testing.T) {
		got := call(t, iso, "get_all_valid_certificates_info", map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": false})
		if !strings.HasPrefix(string(got), `{"status":"Accepted","info":[{`) {
			t.Errorf("got %s", got)
		}
	})
	run("get_leaf_expiry_days_count", func(t *testing.T) {
		var days int
		if err := json.Unmarshal(call(t, ocpp, "get_leaf_expiry_days_count", map[string]any{"certificate_type": "CSMS"}), &days); err != nil || days < 300 {
			t.Errorf("got %d, %v", days, err)
		}
	})
	run("get_v2g_ocsp_request_data", func(t *testing.T) {
		got := call(t, ocpp, "get_v2g_ocsp_request_data", map[string]any{})
		if !strings.Contains(string(got), testpki.DefaultOCSPURL) {
			t.Errorf("got %s", got)
		}
	})
	run("get_mo_ocsp_request_data", func(t *testing.T) {
		got := call(t, iso, "get_mo_ocsp_request_data", map[string]any{"certificate_chain": string(contractChain)})
		if !strings.Contains(string(got), `"ocsp_request_data_list":[{`) {
			t.Errorf("got %s", got)
		}
	})
	run("update_ocsp_cache", func(t *testing.T) {
		h, err := certs.ComputeHashData(p.SECCLeaf.Cert, p.CPOSubCA2.Cert, certs.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		// Not an OCSP response: the store refuses it; the command has no result either way.
		if got := call(t, ocpp, "update_ocsp_cache", map[string]any{"certificate_hash_data": h, "ocsp_response": base64.StdEncoding.EncodeToString([]byte("no ocsp"))}); string(got) != "null" {
			t.Errorf("got %s", got)
		}
		// A response for the CSMS leaf is published nowhere; one for the SECC leaf is published
		// as a V2G leaf install, the message on which EvseV2G rebuilds its TLS server and reads
		// the new OCSP file (a deliberate extra over the reference, which publishes nothing).
		for _, c := range []struct{ leaf, issuer *testpki.Issued }{{p.CSMSLeaf, p.CSMSRoot}, {p.SECCLeaf, p.CPOSubCA2}} {
			hd, err := certs.ComputeHashData(c.leaf.Cert, c.issuer.Cert, certs.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			der, err := ocsp.CreateResponse(c.issuer.Cert, c.issuer.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: c.leaf.Cert.SerialNumber,
				ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}, c.issuer.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got := call(t, ocpp, "update_ocsp_cache", map[string]any{"certificate_hash_data": hd, "ocsp_response": base64.StdEncoding.EncodeToString(der)}); string(got) != "null" {
				t.Errorf("got %s", got)
			}
		}
		wantVar(t, `{"operation":"Installed","leaf_certificate_type":"V2G"}`)
	})
	run("verify_file_signature", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "firmware.bin")
		data := []byte(strings.Repeat("firmware ", 1000))
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(data)
		sig, err := p.FirmwareSigner.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		args := map[string]any{"file_path": file, "signing_certificate": pemOf(p.FirmwareSigner.Cert), "signature": base64.StdEncoding.EncodeToString(sig)}
		if got := call(t, ocpp, "verify_file_signature", args); string(got) != "true" {
			t.Errorf("got %s", got)
		}
	})
	ocpp.DrainVars()
	iso.DrainVars()
	run("install_ca_certificate", func(t *testing.T) {
		if got := call(t, ocpp, "install_ca_certificate", map[string]any{"certificate": pemOf(p.MOSubCA1.Cert), "certificate_type": "MO"}); string(got) != `"Accepted"` {
			t.Fatalf("got %s", got)
		}
		wantVar(t, `{"operation":"Installed","ca_certificate_type":"MO"}`)
	})
	run("delete_certificate", func(t *testing.T) {
		h, err := certs.ComputeHashData(p.MOSubCA1.Cert, p.MORoot.Cert, certs.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got := call(t, ocpp, "delete_certificate", map[string]any{"certificate_hash_data": h}); string(got) != `"Accepted"` {
			t.Fatalf("got %s", got)
		}
		wantVar(t, `{"operation":"Deleted","ca_certificate_type":"MO"}`)
	})
	var csr string
	run("generate_certificate_signing_request", func(t *testing.T) {
		got := call(t, ocpp, "generate_certificate_signing_request", map[string]any{"certificate_type": "CSMS", "country": "DE", "organization": "EVerest test", "common": "CP001", "use_tpm": false})
		var res struct {
			Status string `json:"status"`
			CSR    string `json:"csr"`
		}
		if err := json.Unmarshal(got, &res); err != nil || res.Status != "Accepted" || !strings.Contains(res.CSR, "CERTIFICATE REQUEST") {
			t.Fatalf("got %s", got)
		}
		csr = res.CSR
	})
	run("update_leaf_certificate", func(t *testing.T) {
		if csr == "" {
			t.Skip("no CSR")
		}
		leaf := signCSR(t, csr, p.CSMSRoot, x509.ExtKeyUsageClientAuth)
		if got := call(t, ocpp, "update_leaf_certificate", map[string]any{"certificate_chain": leaf, "certificate_type": "CSMS"}); string(got) != `"Accepted"` {
			t.Fatalf("got %s", got)
		}
		wantVar(t, `{"operation":"Installed","leaf_certificate_type":"CSMS"}`)
	})
	for _, cmd := range schemas.Commands() {
		if !covered[cmd] {
			t.Errorf("command %s of the interface is not exercised", cmd)
		}
	}

	t.Run("error replies", func(t *testing.T) {
		tests := []struct {
			cmd  string
			args string
			want everest.ErrorType
		}{
			{"install_ca_certificate", `{"certificate":"x","certificate_type":"FOO"}`, everest.SchemaValidationError},
			{"get_verify_file", `{}`, everest.SchemaValidationError},
			{"is_ca_certificate_installed", `[1,2]`, everest.MessageParsingError},
			{"no_such_command", `{}`, everest.HandlerException},
		}
		for _, tc := range tests {
			r, err := ocpp.Call(tc.cmd, json.RawMessage(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if r.Error == nil || r.Error.Type != tc.want || r.Error.Message == "" {
				t.Errorf("%s %s: reply %s, want a %s", tc.cmd, tc.args, r.Payload, tc.want)
			}
		}
		// A message on a command topic that is not a Cmd is answered when it says whom to answer.
		id := "d0d0d0d0-0000-4000-8000-000000000001"
		r, err := ocpp.Send("get_verify_file", id, []byte(fmt.Sprintf(`{"msg_type":"Var","data":{"id":%q,"origin":"ocpp"}}`, id)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Error == nil || r.Error.Type != everest.MessageParsingError {
			t.Errorf("non-Cmd message: reply %s", r.Payload)
		}
	})

	t.Run("concurrent callers", func(t *testing.T) {
		concurrentCallers(t, url, m.topics, schemas, string(seccChain))
	})

	t.Run("manager restart", func(t *testing.T) {
		n := len(m.manager.Readies())
		m.manager.Restart()
		m.manager.WaitReadies(t, n+1, 10*time.Second)
		if got := len(m.manager.Readies()); got != n+1 {
			t.Errorf("%d ready messages after the restart, want %d", got, n+1)
		}
	})

	if s := append(ocpp.Stray(), iso.Stray()...); len(s) > 0 {
		t.Errorf("results nobody asked for: %q", s)
	}
}

// concurrentCallers runs 8 callers × 500 calls of cheap, mixed commands at once; every call must
// be answered with the result the same call gave alone.
func concurrentCallers(t *testing.T, url string, topics everest.Topics, schemas *everesttest.Schemas, seccChain string) {
	const callers, calls = 8, 500
	cmds := []struct {
		name string
		args json.RawMessage
	}{
		{"is_ca_certificate_installed", raw(t, map[string]any{"certificate_type": "V2G"})},
		{"get_leaf_certificate_info", raw(t, map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": false})},
		{"verify_certificate", raw(t, map[string]any{"certificate_chain": seccChain, "certificate_types": []string{"V2G"}})},
		{"get_installed_certificates", raw(t, map[string]any{"certificate_types": []string{"V2GRootCertificate", "CSMSRootCertificate"}})},
		{"is_ca_certificate_installed", raw(t, map[string]any{"certificate_type": "MF"})},
	}
	cs := make([]*everesttest.Caller, callers)
	for i := range cs {
		cs[i] = everesttest.NewCaller(t, url, topics, fmt.Sprintf("caller%d", i))
	}
	want := make([]string, len(cmds))
	for i, c := range cmds {
		r, err := cs[0].Call(c.name, c.args)
		if err != nil || r.Error != nil {
			t.Fatalf("%s: %v %+v", c.name, err, r.Error)
		}
		if err := schemas.ValidateResult(c.name, r.Retval); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want[i] = string(r.Retval)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for g := range callers {
		wg.Go(func() {
			for j := range calls {
				i := (g + j) % len(cmds)
				r, err := cs[g].Call(cmds[i].name, cmds[i].args)
				if err == nil && (r.Error != nil || string(r.Retval) != want[i]) {
					err = fmt.Errorf("%s: result %s, want %s", cmds[i].name, r.Payload, want[i])
				}
				if err != nil {
					mu.Lock()
					failures++
					if failures <= 5 {
						t.Errorf("caller%d call %d: %v", g, j, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls in %v", callers*calls, time.Since(start))
	if failures > 0 {
		t.Errorf("%d of %d calls failed", failures, callers*calls)
	}
}
