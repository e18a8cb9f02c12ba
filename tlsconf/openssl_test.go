package tlsconf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// The OpenSSL CLI stands in for the peers of a real station: libocpp's CSMS side and EvseV2G's
// car side both speak OpenSSL.

// opensslServer starts `openssl s_server -accept 127.0.0.1:PORT args...` on a free port and
// returns its address once it accepts. It is stopped by its PID when the test ends.
func opensslServer(t *testing.T, args ...string) string {
	t.Helper()
	testtool.Require(t, "openssl")
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr(t)
		cmd := exec.Command("openssl", append([]string{"s_server", "-accept", addr}, args...)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		accepting := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			signalled := false
			for sc.Scan() {
				if !signalled && strings.TrimSpace(sc.Text()) == "ACCEPT" {
					accepting <- true
					signalled = true
				}
			}
			if !signalled {
				accepting <- false
			}
		}()
		stop := func() {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
			_ = cmd.Wait()
		}
		select {
		case ok := <-accepting:
			if ok {
				t.Cleanup(stop)
				return addr
			}
		case <-time.After(10 * time.Second):
		}
		stop()
		lastErr = stderr.String()
	}
	t.Fatalf("openssl s_server did not start: %s", lastErr)
	return ""
}

// freeAddr returns 127.0.0.1 with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runOpenSSL runs the OpenSSL CLI with stdin and a timeout and returns its standard output.
func runOpenSSL(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	testtool.Require(t, "openssl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("openssl %s: %v: %s", args[0], err, stderr.String())
	}
	return stdout.String(), nil
}

// clientCertificateOfPage fetches s_server's -www status page with the client config cfg and
// returns the client certificate the page reports.
func clientCertificateOfPage(t *testing.T, addr string, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return nil, err
	}
	page, err := io.ReadAll(c)
	if err != nil && len(page) == 0 {
		return nil, err
	}
	_, after, ok := bytes.Cut(page, []byte("Client certificate"))
	if !ok {
		return nil, fmt.Errorf("s_server reported no client certificate:\n%s", page)
	}
	cs, err := certs.ParseCertificates(after[bytes.Index(after, []byte("-----BEGIN")):])
	if err != nil || len(cs) == 0 {
		return nil, fmt.Errorf("no certificate PEM on the page: %v", err)
	}
	return cs[0], nil
}

// Profile 3 against OpenSSL's server, which requires a client certificate under the CSMS root
// and closes the connection on a verification error: the client connects with the store's CSMS
// leaf and, after a new leaf is signed by OpenSSL from the store's CSR and installed, presents
// the new one on the next connection.
func TestOCPPClientAgainstOpenSSLServer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	l := f.layout
	addr := opensslServer(t, "-cert", l.CSMSServerCert, "-key", l.CSMSServerKey,
		"-Verify", "1", "-CAfile", l.CSMSBundle, "-verify_return_error", "-www")
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 3, ServerName: "localhost", Events: f.events, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got, err := clientCertificateOfPage(t, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(f.pki.CSMSLeaf.Cert) {
		t.Fatalf("s_server saw %q serial %x, want the CSMS leaf", got.Subject, got.SerialNumber)
	}

	// A new CSMS leaf: CSR from the store, signed by OpenSSL with the CSMS root key of pki/.
	res := f.st.GenerateCSR(store.LeafCSMS, testpki.Country, testpki.Organization, testpki.ChargePointID, false)
	if res.Status != store.CSRAccepted {
		t.Fatalf("GenerateCSR: %s", res.Status)
	}
	dir := t.TempDir()
	csrPath, leafPath := filepath.Join(dir, "csr.pem"), filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(csrPath, []byte(res.CSR), 0o600); err != nil {
		t.Fatal(err)
	}
	days := fmt.Sprint(365*(testpki.LeafValidityYears+1) + 1) // outlives the installed leaf: newest
	if out, err := runOpenSSL(t, "", "x509", "-req", "-in", csrPath, "-CA", l.CSMSRootCert, "-CAkey", l.CSMSRootKey,
		"-set_serial", "0x7e57", "-days", days, "-copy_extensions", "copy", "-out", leafPath); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	leafPEM, err := os.ReadFile(leafPath)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.st.UpdateLeafCertificate(string(leafPEM), store.LeafCSMS); r != store.InstallAccepted {
		t.Fatalf("UpdateLeafCertificate: %s", r)
	}
	newLeaf, err := certs.ParseCertificates(leafPEM)
	if err != nil || len(newLeaf) != 1 {
		t.Fatalf("OpenSSL's certificate: %v", err)
	}
	got, err = clientCertificateOfPage(t, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(newLeaf[0]) {
		t.Fatalf("after the update s_server saw serial %x, want the new leaf %x", got.SerialNumber, newLeaf[0].SerialNumber)
	}
}

// An OpenSSL server with a certificate of another domain (issued by the V2G root) is refused.
func TestOCPPClientRefusesOpenSSLServerOfOtherDomain(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	other, err := f.pki.V2GRoot.Issue(testpki.Spec{CommonName: "localhost", DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := other.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	addr := opensslServer(t, "-cert", writeFile(t, "server.pem", other.CertPEM()), "-key", writeFile(t, "server.key", keyPEM), "-www")
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 3, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = clientCertificateOfPage(t, addr, cfg)
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Fatalf("err = %v, want x509.UnknownAuthorityError", err)
	}
}

// `openssl s_client -status -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256 -CAfile V2G root` against
// the SECC server: the ISO 15118-2 suite is negotiated, the chain is leaf + CPO Sub-CA 2 + CPO
// Sub-CA 1 and verifies, and the stapled response is the cached one: OpenSSL prints it exactly as
// `openssl ocsp -respin` prints the cached DER file.
func TestSECCServerWithOpenSSLClient(t *testing.T) {
	testtool.Require(t, "openssl")
	f := newFixture(t, fixtureOptions{})
	staple := ocspResponse(t, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2, ocsp.Good, time.Now().Add(24*time.Hour))
	cacheOCSP(t, f.st, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, staple)
	cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, cfg, nil)

	out, err := runOpenSSL(t, "", "s_client", "-connect", addr, "-status", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256",
		"-CAfile", f.layout.V2GBundle, "-showcerts", "-verify_return_error")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if h := next(t, results); h.err != nil {
		t.Fatalf("server: %v", h.err)
	}
	for _, want := range []string{"Cipher is ECDHE-ECDSA-AES128-SHA256", "Protocol  : TLSv1.2", "Verify return code: 0 (ok)"} {
		if !strings.Contains(out, want) {
			t.Errorf("s_client output lacks %q:\n%s", want, out)
		}
	}
	var sent []*x509.Certificate
	if chainText, _, ok := strings.Cut(out, "Server certificate"); ok {
		sent, _ = certs.ParseCertificates([]byte(chainText))
	}
	want := []*x509.Certificate{f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA1.Cert}
	if len(sent) != len(want) || !sent[0].Equal(want[0]) || !sent[1].Equal(want[1]) || !sent[2].Equal(want[2]) {
		t.Errorf("s_client received %v, want %v", subjects(sent), subjects(want))
	}

	stapled := ocspSection(out)
	derPath := writeFile(t, "cached.der", staple)
	cached, err := runOpenSSL(t, "", "ocsp", "-respin", derPath, "-resp_text", "-noverify")
	if err != nil {
		t.Fatal(err)
	}
	if stapled == "" || normalize(stapled) != normalize(cached) {
		t.Errorf("the stapled response differs from the cached one\nstapled:\n%s\ncached:\n%s", stapled, cached)
	}
	if !strings.Contains(stapled, "Cert Status: good") {
		t.Errorf("stapled response is not 'good':\n%s", stapled)
	}
}

// ocspSection is the OCSP response s_client -status printed (between "OCSP response:" and the
// line of "=").
func ocspSection(out string) string {
	_, after, ok := strings.Cut(out, "OCSP response: \n======================================\n")
	if !ok {
		return ""
	}
	section, _, _ := strings.Cut(after, "======================================")
	return section
}

// normalize drops indentation and blank lines, which differ between s_client and openssl ocsp.
func normalize(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
