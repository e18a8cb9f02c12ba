package main_test

// The leaf lifecycle through the built binary, each step a separate process (as an operator or
// the OCPP stack's helper scripts would run it): CSR → OpenSSL as the CA → update_leaf_certificate
// → get_leaf_certificate_info, with OpenSSL checking what the consumer is handed.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// leafCLIRequireTool: a missing program fails under CI=true and skips elsewhere.
func leafCLIRequireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed but CI=true: install it so this test runs", name)
	}
	t.Skipf("skipping: %s is not on PATH", name)
}

// leafCLIBinary builds the evsesec binary into the test's temporary directory (the build cache
// makes the second build cheap).
func leafCLIBinary(t *testing.T) string {
	t.Helper()
	leafCLIRequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "evsesec")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// leafCLIRun runs a program and returns stdout, stderr and the exit code.
func leafCLIRun(t *testing.T, stdin []byte, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), code
}

// leafCLIMust runs a program that must succeed and returns its stdout.
func leafCLIMust(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	out, errOut, code := leafCLIRun(t, stdin, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func leafCLIKeys(t *testing.T, dir string) map[string]bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range m {
		out[p] = true
	}
	return out
}

func TestLeafCLICSRSignedByOpenSSLInstallsAndIsSelected(t *testing.T) {
	leafCLIRequireTool(t, "openssl")
	bin := leafCLIBinary(t)
	const pw = "123456"
	root := t.TempDir()
	leafCLIMust(t, nil, bin, "pki", "init", "--password", pw, root)
	cso := filepath.Join(root, "client", "cso")
	keysBefore := leafCLIKeys(t, cso)

	// 1. The CSR, from the operator verb.
	csr := leafCLIMust(t, nil, bin, "csr", "--certs", root, "--password", pw, "--type", "V2G", "--country", "DE", "--org", "EVerest test", "--cn", "SECCCert")
	if !strings.HasPrefix(csr, "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Fatalf("csr printed %q", csr)
	}
	var keyPath string
	for k := range leafCLIKeys(t, cso) {
		if !keysBefore[k] {
			if keyPath != "" {
				t.Fatalf("csr wrote two keys")
			}
			keyPath = k
		}
	}
	if keyPath == "" || !strings.HasPrefix(filepath.Base(keyPath), "SECC_LEAF_") {
		t.Fatalf("csr key %q", keyPath)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode: %v %v", fi, err)
	}
	if out, errOut, _ := leafCLIRun(t, []byte(csr), "openssl", "req", "-verify", "-noout"); !strings.Contains(out+errOut, "verify OK") {
		t.Fatalf("openssl req -verify: %s%s", out, errOut)
	}

	// 2. OpenSSL as the CSMS's CA.
	csrPath := filepath.Join(t.TempDir(), "secc.csr")
	if err := os.WriteFile(csrPath, []byte(csr), 0o644); err != nil {
		t.Fatal(err)
	}
	cert := leafCLIMust(t, nil, "openssl", "x509", "-req", "-in", csrPath, "-CA", filepath.Join(root, "pki", "CPO_SUB_CA2.pem"),
		"-CAkey", filepath.Join(root, "pki", "CPO_SUB_CA2.key"), "-passin", "pass:"+pw, "-copy_extensions", "copy", "-days", "1000")
	sub2, err := os.ReadFile(filepath.Join(root, "pki", "CPO_SUB_CA2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sub1, err := os.ReadFile(filepath.Join(root, "pki", "CPO_SUB_CA1.pem"))
	if err != nil {
		t.Fatal(err)
	}

	// 3. The certificate arrives in another process (the pending list of the first is gone).
	args, _ := json.Marshal(map[string]string{"certificate_chain": cert + string(sub2) + string(sub1), "certificate_type": "V2G"})
	if out := leafCLIMust(t, args, bin, "call", "--certs", root, "--password", pw, "update_leaf_certificate", "-"); strings.TrimSpace(out) != `"Accepted"` {
		t.Fatalf("update_leaf_certificate: %s", out)
	}

	// 4. It is the leaf in use, with its key, and OpenSSL accepts what the consumer gets.
	out := leafCLIMust(t, nil, bin, "call", "--certs", root, "--password", pw, "get_leaf_certificate_info", `{"certificate_type":"V2G","encoding":"PEM","include_ocsp":false}`)
	var res struct {
		Status string `json:"status"`
		Info   struct {
			Key               string `json:"key"`
			Certificate       string `json:"certificate"`
			CertificateSingle string `json:"certificate_single"`
			CertificateCount  int    `json:"certificate_count"`
			Password          string `json:"password"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	stem := strings.TrimSuffix(filepath.Base(keyPath), ".key")
	if res.Status != "Accepted" || res.Info.Key != keyPath || res.Info.CertificateSingle != filepath.Join(cso, stem+".pem") ||
		res.Info.CertificateCount != 3 || res.Info.Password != pw {
		t.Fatalf("get_leaf_certificate_info: %s", out)
	}
	if out := leafCLIMust(t, nil, "openssl", "verify", "-CAfile", filepath.Join(root, "ca", "v2g", "V2G_ROOT_CA.pem"), "-untrusted", res.Info.Certificate, res.Info.Certificate); !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	keyPub := leafCLIMust(t, nil, "openssl", "pkey", "-in", res.Info.Key, "-passin", "pass:"+pw, "-pubout")
	certPub := leafCLIMust(t, nil, "openssl", "x509", "-in", res.Info.CertificateSingle, "-noout", "-pubkey")
	if keyPub != certPub {
		t.Fatal("the selected key is not the certificate's key")
	}

	// 5. Garbage collection keeps the key of the installed leaf.
	leafCLIMust(t, nil, bin, "call", "--certs", root, "--password", pw, "garbage_collect", "{}")
	if _, err := os.Stat(keyPath); err != nil {
		t.Fatalf("GC removed the leaf's key: %v", err)
	}
}

func TestLeafCLIRejectionsAndFailedCSR(t *testing.T) {
	bin := leafCLIBinary(t)
	root := t.TempDir()
	leafCLIMust(t, nil, bin, "pki", "init", root)
	csms := filepath.Join(root, "client", "csms")

	// A result code is a result: exit 0.
	out, errOut, code := leafCLIRun(t, nil, bin, "call", "--certs", root, "update_leaf_certificate", `{"certificate_chain":"InvalidCertificate","certificate_type":"CSMS"}`)
	if code != 0 || strings.TrimSpace(out) != `"InvalidFormat"` {
		t.Fatalf("garbage leaf: exit %d, %s%s", code, out, errOut)
	}
	out, _, code = leafCLIRun(t, nil, bin, "call", "--certs", root, "generate_certificate_signing_request", `{"certificate_type":"MO","country":"DE","organization":"O","common":"CN","use_tpm":false}`)
	if code != 0 || !strings.Contains(out, `"InvalidRequestedType"`) || strings.Contains(out, `"csr"`) {
		t.Fatalf("MO CSR: exit %d, %s", code, out)
	}
	out, _, code = leafCLIRun(t, nil, bin, "call", "--certs", root, "generate_certificate_signing_request", `{"certificate_type":"V2G","country":"DEU","organization":"O","common":"CN","use_tpm":false}`)
	if code != 0 || !strings.Contains(out, `"GenerationError"`) {
		t.Fatalf("bad country: exit %d, %s", code, out)
	}
	// Arguments that do not fit the interface: exit 2, one line on stderr.
	for _, a := range []string{`{"certificate_type":"V2G"}`, `{"certificate_chain":"x","certificate_type":"SECC"}`, `{`} {
		_, errOut, code := leafCLIRun(t, nil, bin, "call", "--certs", root, "update_leaf_certificate", a)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Fatalf("%s: exit %d, stderr %q", a, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(csms, "CSMS_LEAF.key")); err != nil {
		t.Fatal(err)
	}

	// certificate_signing_request_failed in a later process removes the key of the CSR at once.
	keysBefore := leafCLIKeys(t, csms)
	out = leafCLIMust(t, nil, bin, "call", "--certs", root, "generate_certificate_signing_request", `{"certificate_type":"CSMS","country":"DE","organization":"EVerest","common":"CP001","use_tpm":false}`)
	var res struct {
		Status string `json:"status"`
		CSR    string `json:"csr"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Status != "Accepted" {
		t.Fatalf("CSR: %s %v", out, err)
	}
	keysAfter := leafCLIKeys(t, csms)
	if len(keysAfter) != len(keysBefore)+1 {
		t.Fatalf("keys before %v after %v", keysBefore, keysAfter)
	}
	args, _ := json.Marshal(map[string]string{"csr": res.CSR, "certificate_type": "CSMS"})
	if out := leafCLIMust(t, args, bin, "call", "--certs", root, "certificate_signing_request_failed", "-"); strings.TrimSpace(out) != "true" {
		t.Fatalf("certificate_signing_request_failed: %s", out)
	}
	if got := leafCLIKeys(t, csms); len(got) != len(keysBefore) {
		t.Fatalf("keys after the failed CSR: %v, want %v", got, keysBefore)
	}
}
