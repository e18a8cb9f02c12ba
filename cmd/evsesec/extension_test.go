package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/testpki"
)

// A caller that never names V2G20 never gets a certificate_store_update about a V2G20 leaf:
// EVerest's generated code throws on an enum value it does not know. Once a caller has used
// V2G20, the extension's events are published.
func TestV2G20StoreUpdateOnlyAfterUse(t *testing.T) {
	root := filepath.Join(t.TempDir(), "certs")
	_, l := writePKI(t, root, testpki.Options{ISO15118_20: true, SeccIDs: []string{"EVSE1"}})
	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	srv := serveInProcess("--certs", root, "--socket", sock)
	defer srv.stopAnyExit(t)
	broker := "unix://" + sock
	waitAnswering(t, broker, srv.log.String)
	c := everesttest.NewCaller(t, broker, everest.NewTopics("everest/", "evse_security", "main"), "iso15118_charger")

	hashOf := func(leaf, issuer string) map[string]string {
		t.Helper()
		lc, ic := readCert(t, leaf), readCert(t, issuer)
		h, err := certs.ComputeHashData(lc, ic, certs.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"hash_algorithm": "SHA256", "issuer_name_hash": h.IssuerNameHash, "issuer_key_hash": h.IssuerKeyHash, "serial_number": h.SerialNumber}
	}
	// Deleting the -20 leaf by hash names no V2G20: no variable may carry it.
	r, err := c.Call("delete_certificate", map[string]any{"certificate_hash_data": hashOf(l.SECC20LeafCert, l.CPO20SubCA2Cert)})
	if err != nil || string(r.Retval) != `"Accepted"` {
		t.Fatalf("delete_certificate of the -20 leaf: %s, %v", r.Retval, err)
	}
	if v, err := c.WaitVar(time.Second); err == nil && bytes.Contains(v.Value, []byte("V2G20")) {
		t.Fatalf("a caller that never used V2G20 got %s", v.Value)
	}

	// A caller asks for V2G20: from now on the extension's events are published.
	if r, err := c.Call("get_leaf_certificate_info", map[string]any{"certificate_type": "V2G20", "encoding": "PEM", "include_ocsp": false}); err != nil {
		t.Fatalf("get_leaf_certificate_info V2G20: %s, %v", r.Payload, err)
	}
	c.DrainVars()
	r, err = c.Call("delete_certificate", map[string]any{"certificate_hash_data": hashOf(l.EVSEs[0].V2G20Cert, l.CPO20SubCA2Cert)})
	if err != nil || string(r.Retval) != `"Accepted"` {
		t.Fatalf("delete_certificate of EVSE1's -20 leaf: %s, %v\n%s", r.Retval, err, srv.log.String())
	}
	v, err := c.WaitVar(5 * time.Second)
	if err != nil {
		t.Fatalf("no certificate_store_update after a V2G20 delete, once a caller used V2G20: %v", err)
	}
	var u map[string]string
	if err := json.Unmarshal(v.Value, &u); err != nil || u["leaf_certificate_type"] != "V2G20" || u["operation"] != "Deleted" {
		t.Fatalf("certificate_store_update = %s (%v), want Deleted V2G20", v.Value, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(must(os.ReadFile(path)))
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
