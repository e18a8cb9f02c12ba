package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/store"
)

// `pki init --iso15118-20 --secc-id ...` makes a store with both SECC leaf kinds and one leaf of
// each kind per EVSE; ls shows each leaf's kind and SECC-ID; doctor, told the EVSEs, is quiet
// while each has its own leaf and names the one that has none.
func TestPKIInitISO15118_20AndEVSEs(t *testing.T) {
	root := t.TempDir()
	if out, errOut, code := runCLI("pki", "init", "--iso15118-20", "--secc-id", "EVSE1", "--secc-id", "EVSE2", root); code != 0 {
		t.Fatalf("pki init: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code := runCLI("doctor", "--certs", root); code != 0 || !strings.Contains(out, "no problems found") {
		t.Fatalf("doctor of the new store: exit %d\n%s", code, out)
	}

	out, errOut, code := runCLI("ls", "--certs", root)
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	cols := regexp.MustCompile(`\s{2,}`)
	if head := cols.Split(lines[0], -1); len(head) < 3 || head[2] != "SECC-ID" {
		t.Fatalf("ls header %q", lines[0])
	}
	rows := map[string][]string{} // file name -> columns
	for _, l := range lines[1:] {
		c := cols.Split(l, -1)
		if c[0] == "leaf" {
			rows[filepath.Base(c[len(c)-1])] = c
		}
	}
	want := map[string][2]string{
		"SECC_LEAF.pem":         {"V2G leaf", "SECCCert"},
		"SECC20_LEAF.pem":       {"V2G20 leaf", "SECC20Cert"},
		"SECC_LEAF_EVSE1.pem":   {"V2G leaf", "EVSE1"},
		"SECC20_LEAF_EVSE1.pem": {"V2G20 leaf", "EVSE1"},
		"SECC_LEAF_EVSE2.pem":   {"V2G leaf", "EVSE2"},
		"SECC20_LEAF_EVSE2.pem": {"V2G20 leaf", "EVSE2"},
		"CSMS_LEAF.pem":         {"CSMS leaf", "-"},
	}
	for file, w := range want {
		r, ok := rows[file]
		if !ok || r[1] != w[0] || r[2] != w[1] {
			t.Errorf("ls row of %s: %q, want domain %q and SECC-ID %q\n%s", file, r, w[0], w[1], out)
		}
	}

	if out, _, code := runCLI("doctor", "--certs", root, "--secc-id", "EVSE1", "--secc-id", "EVSE2"); code != 0 || !strings.Contains(out, "no problems found") {
		t.Errorf("doctor with both EVSEs: exit %d\n%s", code, out)
	}
	out, _, code = runCLI("doctor", "--certs", root, "--secc-id", "EVSE1", "--secc-id", "EVSE3", "--json")
	var fs []store.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil || code != 0 {
		t.Fatalf("doctor --json: exit %d %v\n%s", code, err, out)
	}
	var evse3 []string
	for _, f := range fs {
		if strings.Contains(f.Problem, `"EVSE3"`) {
			evse3 = append(evse3, f.Severity+": "+f.Problem)
		}
		if strings.Contains(f.Problem, `"EVSE1" has no`) {
			t.Errorf("EVSE1 has its own leaf: %+v", f)
		}
	}
	// Two "no leaf of its own" (V2G, V2G20), and a "share" for each kind whose station-wide
	// choice happens to be EVSE1's leaf (the leaves tie on validity).
	joined := strings.Join(evse3, "\n")
	if len(evse3) < 2 || !strings.Contains(joined, "no usable V2G leaf of its own") || !strings.Contains(joined, "no usable V2G20 leaf of its own") {
		t.Errorf("doctor about EVSE3: %v", evse3)
	}

	// A V2G20 leaf through call (which one of the three ties is the store's choice), and a V2G20
	// CSR through csr.
	out, _, code = runCLI("call", "--certs", root, "get_leaf_certificate_info", `{"certificate_type":"V2G20","encoding":"PEM","include_ocsp":false}`)
	var info store.CertificateInfoResult
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 || info.Status != store.InfoAccepted ||
		!strings.HasPrefix(filepath.Base(info.Info.CertificateSingle), "SECC20_LEAF") {
		t.Errorf("call get_leaf_certificate_info V2G20: exit %d %s", code, out)
	}
	out, errOut, code = runCLI("csr", "--certs", root, "--type", "V2G20", "--country", "DE", "--org", "EVerest test", "--cn", "EVSE3")
	blk, _ := pem.Decode([]byte(out))
	if code != 0 || blk == nil {
		t.Fatalf("csr --type V2G20: exit %d %s", code, errOut)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P521() || csr.Subject.CommonName != "EVSE3" {
		t.Errorf("V2G20 CSR: key %T, CN %q", csr.PublicKey, csr.Subject.CommonName)
	}
}
