package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// clock is a settable clock shared by a store and a config in tests: the real time until Set
// stops it at a given time.
type clock struct {
	mu sync.Mutex
	t  time.Time // zero: time.Now()
}

func newClock() *clock { return &clock{} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fixture is a store over the standard test PKI in the EVerest default layout.
type fixture struct {
	pki    *testpki.PKI
	layout *testpki.Layout
	st     *store.Store
	events *Events
	clock  *clock // the store's clock
}

// fixtureOptions tune newFixture.
type fixtureOptions struct {
	password string                // key file password (store private_key_password)
	prepare  func(*testpki.Layout) // runs on the tree before the store is opened
}

// newFixture generates the test PKI (cached per test binary: key generation is the slow part),
// writes it under a temporary directory and opens a store on it whose events go to f.events.
func newFixture(t testing.TB, opts fixtureOptions) *fixture {
	t.Helper()
	p := standardPKI(t)
	dir := t.TempDir()
	l, err := p.WriteLayout(dir, opts.password)
	if err != nil {
		t.Fatal(err)
	}
	if opts.prepare != nil {
		opts.prepare(l)
	}
	f := &fixture{pki: p, layout: l, events: &Events{}, clock: newClock()}
	cfg := store.DefaultConfig(dir)
	cfg.PrivateKeyPassword = opts.password
	f.st, err = store.Open(cfg, store.Options{OnEvent: f.events.Publish, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	pkiOnce sync.Once
	pkiVal  *testpki.PKI
	pkiErr  error
)

func standardPKI(t testing.TB) *testpki.PKI {
	t.Helper()
	pkiOnce.Do(func() { pkiVal, pkiErr = testpki.Generate(testpki.Options{}) })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

// csr asks the store for a CSR of type lt and returns it parsed.
func csr(t testing.TB, st *store.Store, lt store.LeafType) *x509.CertificateRequest {
	t.Helper()
	cn := testpki.ChargePointID
	if lt == store.LeafV2G {
		cn = "SECCCert"
	}
	res := st.GenerateCSR(lt, testpki.Country, testpki.Organization, cn, false)
	if res.Status != store.CSRAccepted {
		t.Fatalf("GenerateCSR(%s): %s", lt, res.Status)
	}
	blk, _ := pem.Decode([]byte(res.CSR))
	if blk == nil {
		t.Fatal("CSR is not PEM")
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// signCSR issues a leaf for req under ca, valid from an hour ago until notAfter, with the key
// usage of an ISO 15118-2 leaf and the given extended key usages.
func signCSR(t testing.TB, req *x509.CertificateRequest, ca *testpki.Issued, notAfter time.Time, eku ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		RawSubject:            req.RawSubject,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		DNSNames:              req.DNSNames,
		OCSPServer:            []string{testpki.DefaultOCSPURL},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// installLeaf makes a new leaf of type lt through the store's CSR, issued by ca and valid until
// notAfter, and installs it with ca's chain (without the root). It returns the leaf.
func installLeaf(t testing.TB, st *store.Store, lt store.LeafType, ca *testpki.Issued, notAfter time.Time) *x509.Certificate {
	t.Helper()
	var eku []x509.ExtKeyUsage
	if lt == store.LeafCSMS {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	leaf := signCSR(t, csr(t, st, lt), ca, notAfter, eku...)
	chain := []*x509.Certificate{leaf}
	for i := ca; i != nil && i.Issuer != nil; i = i.Issuer {
		chain = append(chain, i.Cert)
	}
	if res := st.UpdateLeafCertificate(string(certs.EncodePEM(chain...)), lt); res != store.InstallAccepted {
		t.Fatalf("UpdateLeafCertificate(%s): %s", lt, res)
	}
	return leaf
}

// ocspResponse makes a DER OCSP response for cert signed by its issuer.
func ocspResponse(t testing.TB, cert *x509.Certificate, issuer *testpki.Issued, status int, nextUpdate time.Time) []byte {
	t.Helper()
	tmpl := ocsp.Response{
		Status:       status,
		SerialNumber: cert.SerialNumber,
		ThisUpdate:   time.Now().Add(-time.Minute),
		NextUpdate:   nextUpdate,
	}
	if status == ocsp.Revoked {
		tmpl.RevokedAt = time.Now().Add(-30 * time.Minute)
	}
	der, err := ocsp.CreateResponse(issuer.Cert, issuer.Cert, tmpl, issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// cacheOCSP puts der into the store's OCSP cache for cert through update_ocsp_cache.
func cacheOCSP(t testing.TB, st *store.Store, cert, issuer *x509.Certificate, der []byte) {
	t.Helper()
	h, err := certs.ComputeHashData(cert, issuer, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateOCSPCache(h, base64.StdEncoding.EncodeToString(der)); err != nil {
		t.Fatalf("UpdateOCSPCache: %v", err)
	}
}

// handshake is what a test server saw of one connection.
type handshake struct {
	state tls.ConnectionState
	err   error
}

// serveTLS runs a Go TLS server with cfg on 127.0.0.1 until the test ends. Each accepted
// connection is handshaken and closed; the result goes to the returned channel. wrap, if not nil,
// wraps each accepted connection before the TLS layer.
func serveTLS(t testing.TB, cfg *tls.Config, wrap func(net.Conn) net.Conn) (string, <-chan handshake) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan handshake, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if wrap != nil {
				c = wrap(c)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, cfg)
				err := tc.Handshake()
				results <- handshake{state: tc.ConnectionState(), err: err}
				if err == nil {
					// Wait for the client to finish (TLS 1.3 client certificates are checked
					// after the client's handshake returns).
					buf := make([]byte, 1)
					_, _ = tc.Read(buf)
				}
			}()
		}
	}()
	return ln.Addr().String(), results
}

// next waits for the next server-side handshake result.
func next(t testing.TB, results <-chan handshake) handshake {
	t.Helper()
	select {
	case h := <-results:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake on the server")
		return handshake{}
	}
}

// dial connects a TLS client with cfg to addr, completes the handshake and returns the state.
// (Under TLS 1.3 a server refusing the client certificate is seen on the server's side.)
func dial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

// removeFiles deletes files of a layout before the store is opened.
func removeFiles(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// writeFile writes data to name in t's temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameChain reports whether the DER chains are byte-equal.
func sameChain(got [][]byte, want ...*x509.Certificate) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if string(got[i]) != string(want[i].Raw) {
			return false
		}
	}
	return true
}

// subjects lists the common names of a chain, for messages.
func subjects(cs []*x509.Certificate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Subject.CommonName
	}
	return out
}
