package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/certs"
)

// callOpenSSL runs the openssl CLI in dir. A missing openssl fails the test under CI=true and
// skips it elsewhere.
func callOpenSSL(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("skipping: openssl is not installed (%v)", err)
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// callPKI is a root → sub-CA → leaf chain made with the openssl CLI, and a self-signed leaf.
type callPKI struct {
	dir                     string
	root, sub, leaf, selfie string // PEM text
	rootFile, leafChainFile string
	rootHash, subHash       certs.HashData
}

func newCallPKI(t *testing.T) *callPKI {
	t.Helper()
	p := &callPKI{dir: t.TempDir()}
	conf := "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n" +
		"[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n"
	if err := os.WriteFile(filepath.Join(p.dir, "ext.cnf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(name, subj, issuer, ext string, serial int) string {
		callOpenSSL(t, p.dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
			"-keyout", name+".key", "-subj", subj, "-out", name+".csr")
		args := []string{"x509", "-req", "-in", name + ".csr", "-days", "365", "-set_serial", fmt.Sprint(serial),
			"-extfile", "ext.cnf", "-extensions", ext, "-out", name + ".pem"}
		if issuer == "" {
			args = append(args, "-key", name+".key")
		} else {
			args = append(args, "-CA", issuer+".pem", "-CAkey", issuer+".key")
		}
		callOpenSSL(t, p.dir, args...)
		b, err := os.ReadFile(filepath.Join(p.dir, name+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	p.root = mk("root", "/CN=CLI Root/O=EVerest/C=DE", "", "ca", 1)
	p.sub = mk("sub", "/CN=CLI Sub/O=EVerest/C=DE", "root", "ca", 2)
	p.leaf = mk("leaf", "/CN=CLI Leaf/O=EVerest/C=DE", "sub", "leaf", 3)
	p.selfie = mk("selfie", "/CN=Self Signed/O=EVerest", "", "leaf", 4)
	p.rootFile = filepath.Join(p.dir, "root.pem")
	p.leafChainFile = filepath.Join(p.dir, "chain.pem")
	if err := os.WriteFile(p.leafChainFile, []byte(p.leaf+p.sub), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, _ := certs.ParseCertificates([]byte(p.root))
	sc, _ := certs.ParseCertificates([]byte(p.sub))
	p.rootHash, _ = certs.ComputeHashData(rc[0], rc[0], certs.SHA256)
	p.subHash, _ = certs.ComputeHashData(sc[0], rc[0], certs.SHA256)
	return p
}

func argsJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
}

// TestCallCA runs `evsesec call` (in-process, through run) for the CA commands in order: exit
// status 0 and exactly the JSON result on stdout whenever the command ran, whatever its result;
// exit status 2, nothing on stdout and one line on stderr for a command line or arguments that
// cannot be run; 1 when the store cannot be opened.
func TestCallCA(t *testing.T) {
	p := newCallPKI(t)
	root := t.TempDir()
	certsFlag := "--certs=" + root
	bundle := filepath.Join(root, "ca", "v2g", "V2G_ROOT_CA.pem")
	bundleJSON, _ := json.Marshal(bundle)
	hashJSON := func(h certs.HashData) string { return argsJSON(t, map[string]any{"certificate_hash_data": h}) }
	wantList := fmt.Sprintf(`{"status":"Accepted","certificate_hash_data_chain":[{"certificate_type":"V2GRootCertificate","certificate_hash_data":%s,"child_certificate_hash_data":[%s]}]}`,
		argsJSON(t, p.rootHash), argsJSON(t, p.subHash))
	badConfig := filepath.Join(t.TempDir(), "missing.yaml")

	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // exact
		// stderr describes the single stderr line: it starts with the first word and contains the
		// rest; "" means stderr must be empty.
		stderr string
	}{
		{"empty domain", []string{"call", certsFlag, "is_ca_certificate_installed", `{"certificate_type":"V2G"}`}, 0, "false\n", ""},
		{"no verify file yet", []string{"call", certsFlag, "get_verify_file", `{"certificate_type":"V2G"}`}, 0, "\"\"\n", ""},
		{"install root", []string{"call", certsFlag, "install_ca_certificate", argsJSON(t, map[string]string{"certificate": p.root, "certificate_type": "V2G"})}, 0, "\"Accepted\"\n", ""},
		{"install sub-CA", []string{"call", certsFlag, "install_ca_certificate", argsJSON(t, map[string]string{"certificate": p.sub, "certificate_type": "V2G"})}, 0, "\"Accepted\"\n", ""},
		{"installed", []string{"call", certsFlag, "is_ca_certificate_installed", `{"certificate_type":"V2G"}`}, 0, "true\n", ""},
		{"verify file", []string{"call", certsFlag, "get_verify_file", `{"certificate_type":"V2G"}`}, 0, string(bundleJSON) + "\n", ""},
		{"verify location", []string{"call", certsFlag, "get_verify_location", `{"certificate_type":"V2G"}`}, 0, string(bundleJSON) + "\n", ""},
		{"list", []string{"call", certsFlag, "get_installed_certificates", `{"certificate_types":["V2GRootCertificate"]}`}, 0, wantList + "\n", ""},
		{"verify chain", []string{"call", certsFlag, "verify_certificate", argsJSON(t, map[string]any{"certificate_chain": p.leaf + p.sub, "certificate_types": []string{"V2G"}})}, 0, "\"Valid\"\n", ""},
		{"verify self-signed", []string{"call", certsFlag, "verify_certificate", argsJSON(t, map[string]any{"certificate_chain": p.selfie, "certificate_types": []string{"V2G"}})}, 0, "\"Unknown\"\n", ""},
		{"install verb", []string{"install-ca", certsFlag, "--type", "CSMS", p.rootFile}, 0, "\"Accepted\"\n", ""},
		{"verify verb", []string{"verify", certsFlag, "--type", "CSMS,MO", p.leafChainFile}, 0, "\"Valid\"\n", ""},
		// A result that is a rejection is still a result: exit 0 (the store logs why on stderr).
		{"install garbage", []string{"call", certsFlag, "install_ca_certificate", `{"certificate":"-----BEGIN CERTIFICATE-----InvalidCertificate-----END CERTIFICATE-----","certificate_type":"CSMS"}`}, 0, "\"InvalidFormat\"\n", "time="},
		{"install a leaf", []string{"call", certsFlag, "install_ca_certificate", argsJSON(t, map[string]string{"certificate": p.leaf, "certificate_type": "MO"})}, 0, "\"InvalidFormat\"\n", "time="},
		{"delete unknown", []string{"call", certsFlag, "delete_certificate", `{"certificate_hash_data":{"hash_algorithm":"SHA256","issuer_name_hash":"00","issuer_key_hash":"UnknownKeyHash","serial_number":"3046"}}`}, 0, "\"NotFound\"\n", "time="},
		// Arguments that cannot be run.
		{"wrong enum", []string{"call", certsFlag, "install_ca_certificate", argsJSON(t, map[string]string{"certificate": p.root, "certificate_type": "V2GRootCertificate"})}, 2, "", "evsesec install_ca_certificate: argument \"certificate_type\""},
		{"lower-case enum", []string{"call", certsFlag, "is_ca_certificate_installed", `{"certificate_type":"v2g"}`}, 2, "", "evsesec is_ca_certificate_installed: argument \"certificate_type\""},
		{"missing argument", []string{"call", certsFlag, "install_ca_certificate", `{"certificate_type":"V2G"}`}, 2, "", "evsesec install_ca_certificate: argument \"certificate\": missing"},
		{"no arguments at all", []string{"call", certsFlag, "get_installed_certificates"}, 2, "", "evsesec get_installed_certificates: argument \"certificate_types\""},
		{"malformed JSON", []string{"call", certsFlag, "verify_certificate", `{"certificate_chain": "x",`}, 2, "", "evsesec verify_certificate: arguments are not a JSON object"},
		{"JSON that is no object", []string{"call", certsFlag, "get_verify_file", `["V2G"]`}, 2, "", "evsesec get_verify_file: arguments are not a JSON object"},
		{"bad hash algorithm", []string{"call", certsFlag, "delete_certificate", `{"certificate_hash_data":{"hash_algorithm":"MD5","issuer_name_hash":"a","issuer_key_hash":"b","serial_number":"1"}}`}, 2, "", "evsesec delete_certificate: argument \"certificate_hash_data.hash_algorithm\""},
		{"unknown command", []string{"call", certsFlag, "install_root_certificate", `{}`}, 2, "", "evsesec call: unknown command"},
		{"no command", []string{"call", certsFlag}, 2, "", "evsesec call: want COMMAND"},
		{"too many arguments", []string{"call", certsFlag, "get_verify_file", `{}`, `{}`}, 2, "", "evsesec call: want COMMAND"},
		{"install verb, bad type", []string{"install-ca", certsFlag, "--type", "ROOT", p.rootFile}, 2, "", "evsesec install_ca_certificate: argument \"certificate_type\""},
		{"install verb, missing file", []string{"install-ca", certsFlag, "--type", "V2G", filepath.Join(p.dir, "nope.pem")}, 2, "", "evsesec install-ca:"},
		{"unreadable config", []string{"call", "--config=" + badConfig, "get_verify_file", `{"certificate_type":"V2G"}`}, 1, "", "evsesec: read config"},
		// The listed hash data deletes; upper-case hex names the same certificate.
		{"delete sub-CA", []string{"call", certsFlag, "delete_certificate", strings.Replace(hashJSON(p.subHash), p.subHash.IssuerKeyHash, strings.ToUpper(p.subHash.IssuerKeyHash), 1)}, 0, "\"Accepted\"\n", ""},
		{"verify without sub-CA", []string{"call", certsFlag, "verify_certificate", argsJSON(t, map[string]any{"certificate_chain": p.leaf, "certificate_types": []string{"V2G"}})}, 0, "\"IssuerNotFound\"\n", ""},
	}
	for _, st := range steps {
		var stdout, stderr bytes.Buffer
		code := run(st.args, &stdout, &stderr)
		if code != st.code || stdout.String() != st.stdout {
			t.Errorf("%s: exit %d, stdout %q; want %d, %q (stderr %q)", st.name, code, stdout.String(), st.code, st.stdout, stderr.String())
			continue
		}
		switch {
		case st.stderr == "" && stderr.Len() != 0:
			t.Errorf("%s: stderr %q, want none", st.name, stderr.String())
		case st.stderr != "" && (lines(stderr.String()) != 1 || !strings.HasPrefix(stderr.String(), strings.Fields(st.stderr)[0]) || !strings.Contains(stderr.String(), st.stderr[len(strings.Fields(st.stderr)[0]):])):
			t.Errorf("%s: stderr %q, want one line like %q", st.name, stderr.String(), st.stderr)
		}
	}
	// What the CLI wrote is what OpenSSL reads.
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != p.root {
		t.Errorf("V2G bundle after the steps:\n%s\nwant exactly the root's PEM", data)
	}
	callOpenSSL(t, p.dir, "verify", "-CAfile", bundle, "-untrusted", "sub.pem", "leaf.pem")
}

// TestCallHelperProcess is `evsesec` itself when the test binary is started by TestCallProcess:
// the arguments after "--" are the command line.
func TestCallHelperProcess(t *testing.T) {
	if os.Getenv("EVSESEC_CALL_HELPER") != "1" {
		t.Skip("helper process for TestCallProcess")
	}
	os.Exit(run(flag.Args(), os.Stdout, os.Stderr))
}

// TestCallProcess runs a few calls as a separate process, as scripts do: exit status, stdout,
// one stderr line, and arguments read from stdin with "-".
func TestCallProcess(t *testing.T) {
	p := newCallPKI(t)
	root := t.TempDir()
	exe := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestCallHelperProcess$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "EVSESEC_CALL_HELPER=1", "EVSESEC_CERTS="+root)
		cmd.Stdin = strings.NewReader(stdin)
		return runCmd(t, cmd)
	}
	install := argsJSON(t, map[string]string{"certificate": p.root, "certificate_type": "MF"})
	if out, errOut, code := exe(install, "call", "install_ca_certificate", "-"); code != 0 || out != "\"Accepted\"\n" || errOut != "" {
		t.Errorf("install from stdin: exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := exe("", "call", "is_ca_certificate_installed", `{"certificate_type":"MF"}`); code != 0 || out != "true\n" || errOut != "" {
		t.Errorf("is_ca_certificate_installed ($EVSESEC_CERTS): exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := exe("", "call", "is_ca_certificate_installed", `{"certificate_type":"mf"}`); code != 2 || out != "" || lines(errOut) != 1 {
		t.Errorf("bad enum: exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := exe(`{"certificate_type":`, "call", "get_verify_file", "-"); code != 2 || out != "" || lines(errOut) != 1 {
		t.Errorf("malformed JSON on stdin: exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := exe("", "call", "nonsense"); code != 2 || out != "" || lines(errOut) != 1 {
		t.Errorf("unknown command: exit %d, %q, %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "ca", "mf", "MF_ROOT_CA.pem")); err != nil {
		t.Errorf("the process did not write the MF bundle: %v", err)
	}
}
