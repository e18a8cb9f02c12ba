package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evsesec/evsesec/testpki"
)

// writePKI generates a test PKI with opts and writes it into the store at dir (its keys
// encrypted with opts.Password, if any).
func writePKI(t *testing.T, dir string, opts testpki.Options) (*testpki.PKI, *testpki.Layout) {
	t.Helper()
	p, err := testpki.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.WriteLayout(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// servePKI writes the standard test PKI into a temporary store.
func servePKI(t *testing.T) (string, *testpki.Layout) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "certs")
	_, l := writePKI(t, root, testpki.Options{})
	return root, l
}

// runCLI runs the command line in-process and returns stdout, stderr and the exit status.
func runCLI(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// `evsesec serve` on the embedded broker's Unix socket, called by `evsesec call --broker`: the same
// output as the in-process call and the documented exit statuses.
func TestServeAndCallBroker(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root, l := servePKI(t)
	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	srv := serveInProcess("--certs", root, "--socket", sock)
	defer srv.stop(t)
	broker := "unix://" + sock
	waitAnswering(t, broker, srv.log.String)

	chain, err := os.ReadFile(l.SECCChain)
	if err != nil {
		t.Fatal(err)
	}
	same := []struct{ cmd, args string }{
		{"get_leaf_certificate_info", `{"certificate_type":"V2G","encoding":"PEM","include_ocsp":true}`},
		{"verify_certificate", fmt.Sprintf(`{"certificate_chain":%q,"certificate_types":["V2G"]}`, chain)},
		{"get_installed_certificates", `{"certificate_types":["V2GRootCertificate","V2GCertificateChain"]}`},
		{"get_verify_file", `{"certificate_type":"CSMS"}`},
	}
	for _, tc := range same {
		local, _, lc := runCLI("call", "--certs", root, tc.cmd, tc.args)
		remote, errOut, rc := runCLI("call", "--broker", broker, tc.cmd, tc.args)
		if lc != 0 || rc != 0 || local != remote || errOut != "" {
			t.Errorf("%s: in-process exit %d %q; over MQTT exit %d %q %q", tc.cmd, lc, local, rc, remote, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"is_ca_certificate_installed", `{"certificate_type":"XX"}`}, 2},                                    // SchemaValidationError
		{[]string{"is_ca_certificate_installed", `[1]`}, 2},                                                          // MessageParsingError
		{[]string{"is_ca_certificate_installed", `{"certificate_type":`}, 2},                                         // not JSON
		{[]string{"no_such_command", `{}`}, 2},                                                                       // unknown command
		{[]string{"--certs", root, "is_ca_certificate_installed", `{}`}, 2},                                          // a local flag
		{[]string{"--module-id", "other", "--timeout", "500ms", "get_verify_file", `{"certificate_type":"V2G"}`}, 1}, // nobody answers
	} {
		out, errOut, code := runCLI(append([]string{"call", "--broker", broker}, tc.args...)...)
		if code != tc.code || out != "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("call %v: exit %d, %q, %q; want exit %d and one line on stderr", tc.args, code, out, errOut, tc.code)
		}
	}
	if _, errOut, code := runCLI("call", "--module-id", "x", "get_verify_file", `{}`); code != 2 || !strings.Contains(errOut, "--broker") {
		t.Errorf("--module-id without --broker: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI("call", "--broker", "tcp://127.0.0.1:"+fmt.Sprint(freePort(t)), "--timeout", "2s", "get_verify_file", `{"certificate_type":"V2G"}`); code != 1 || !strings.Contains(errOut, "cannot reach the MQTT broker") {
		t.Errorf("unreachable broker: exit %d, %q", code, errOut)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestServeUsage(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root, _ := servePKI(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--broker", "tcp://127.0.0.1:1", "--listen", "127.0.0.1:1"}, 2, "excludes"},
		{[]string{"--listen", "127.0.0.1:1", "--socket", "/tmp/x"}, 2, "exclude"},
		{[]string{"--tls-ca", "ca.pem"}, 2, "--broker"},
		{[]string{"--username", "u"}, 2, "--broker"},
		{[]string{"extra"}, 2, "unexpected"},
		{[]string{"--certs", root, "--broker", "tcp://127.0.0.1:" + fmt.Sprint(freePort(t))}, 1, "connect to MQTT broker"},
		{[]string{"--certs", root, "--broker", "tcp://127.0.0.1:1", "--username", "u", "--password-file", "/nonexistent"}, 2, "password file"},
		{[]string{"--config", "/nonexistent/evsesec.yaml"}, 1, "config"},
	} {
		var errb bytes.Buffer
		code := serve(context.Background(), tc.args, &bytes.Buffer{}, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("serve %v: exit %d, %q; want exit %d mentioning %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
	// The embedded broker's port is taken.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var errb bytes.Buffer
	if code := serve(context.Background(), []string{"--certs", root, "--listen", l.Addr().String()}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "listen") {
		t.Errorf("port in use: exit %d, %q", code, errb.String())
	}
	var out bytes.Buffer
	if code := serve(context.Background(), []string{"-h"}, &out, &out); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	for _, flag := range []string{"-broker", "-listen", "-socket", "-module-id", "-prefix", "-username", "-password-file", "-tls-ca", "-tls-cert", "-tls-key", "-config", "-certs"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("serve -h does not explain %s", flag)
		}
	}
}

// buildBinary builds evsesec into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evsesec")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitExit waits for a started process and returns its exit status.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("process did not exit within %v", d)
	}
	return -1
}

// The serve process on the embedded broker stops cleanly on SIGTERM (exit 0).
func TestServeProcessSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	root, _ := servePKI(t)
	srv, addr := spawnServeListening(t, bin, "serve", "--certs", root, "--listen", "127.0.0.1:0")
	if out := waitAnswering(t, "tcp://"+addr, srv.stderr); out != "true\n" {
		t.Errorf("call: %q", out)
	}
	srv.stop(t)
}
