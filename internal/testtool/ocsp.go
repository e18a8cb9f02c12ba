package testtool

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// OpenSSLOCSP makes OCSP responses with the OpenSSL CLI, offline: the request is written by
// `openssl ocsp -issuer ... -cert ... -reqout` and answered by `openssl ocsp -index ... -rsigner
// ... -reqin ... -respout`, so nothing listens on a port. The responses are what a real OpenSSL
// based CA responder sends, in its default form unless told otherwise.
type OpenSSLOCSP struct {
	t   testing.TB
	bin string
	dir string
	n   int
}

// NewOpenSSLOCSP returns a responder working in a temporary directory of t. It skips (or under
// CI fails) the test when the OpenSSL CLI is missing.
func NewOpenSSLOCSP(t testing.TB) *OpenSSLOCSP {
	t.Helper()
	return &OpenSSLOCSP{t: t, bin: Require(t, "openssl"), dir: t.TempDir()}
}

// OCSPSigner is the certificate and PEM private key a response is signed with: the issuer of the
// certificate asked about, or a responder it delegated to (OCSPSigning usage).
type OCSPSigner struct {
	Cert   *x509.Certificate
	KeyPEM []byte
}

// Respond returns the DER response about cert (issued by issuer) signed by signer, with status
// good or revoked and a nextUpdate a week ahead. extra are further options of the responding
// `openssl ocsp` run: none is OpenSSL's default form, which embeds the signer's certificate;
// "-resp_no_certs" leaves it out.
func (o *OpenSSLOCSP) Respond(cert, issuer *x509.Certificate, signer OCSPSigner, revoked bool, extra ...string) []byte {
	o.t.Helper()
	o.n++
	id := fmt.Sprint(o.n)
	certFile := o.file("cert"+id+".pem", pemOf(cert))
	issuerFile := o.file("issuer"+id+".pem", pemOf(issuer))
	reqFile := filepath.Join(o.dir, "req"+id+".der")
	o.run("ocsp", "-issuer", issuerFile, "-cert", certFile, "-no_nonce", "-reqout", reqFile)

	serial := fmt.Sprintf("%X", cert.SerialNumber)
	if len(serial)%2 == 1 {
		serial = "0" + serial // the index holds whole bytes, as BN_bn2hex writes them
	}
	expiry := cert.NotAfter.UTC().Format("060102150405Z")
	line := fmt.Sprintf("V\t%s\t\t%s\tunknown\t/CN=%s\n", expiry, serial, cert.Subject.CommonName)
	if revoked {
		line = fmt.Sprintf("R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s\n", expiry, time.Now().Add(-time.Hour).UTC().Format("060102150405Z"), serial, cert.Subject.CommonName)
	}
	index := o.file("index"+id+".txt", []byte(line))
	o.file("index"+id+".txt.attr", []byte("unique_subject = no\n"))
	respFile := filepath.Join(o.dir, "resp"+id+".der")
	args := []string{"ocsp", "-index", index, "-CA", issuerFile,
		"-rsigner", o.file("signer"+id+".pem", pemOf(signer.Cert)),
		"-rkey", o.file("signer"+id+".key", signer.KeyPEM),
		"-reqin", reqFile, "-respout", respFile, "-ndays", "7"}
	o.run(append(args, extra...)...)
	der, err := os.ReadFile(respFile)
	if err != nil {
		o.t.Fatal(err)
	}
	return der
}

// Text is `openssl ocsp -respin -resp_text -noverify` of a DER response: what OpenSSL reads in
// it, for comparing with what s_client -status printed.
func (o *OpenSSLOCSP) Text(der []byte) string {
	o.t.Helper()
	o.n++
	return o.run("ocsp", "-respin", o.file("respin"+fmt.Sprint(o.n)+".der", der), "-resp_text", "-noverify")
}

func (o *OpenSSLOCSP) file(name string, data []byte) string {
	o.t.Helper()
	p := filepath.Join(o.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		o.t.Fatal(err)
	}
	return p
}

func (o *OpenSSLOCSP) run(args ...string) string {
	o.t.Helper()
	cmd := exec.Command(o.bin, args...)
	cmd.Dir = o.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		o.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
