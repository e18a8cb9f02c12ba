package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// carConfig is a Go client trusting the V2G root, as a car would.
func carConfig(f *fixture, version uint16, suites ...uint16) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(f.pki.V2GRoot.Cert)
	return &tls.Config{RootCAs: pool, ServerName: "SECCCert", MinVersion: version, MaxVersion: version, CipherSuites: suites,
		// The SECC leaf names no host; a car checks the chain only.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		},
	}
}

// The SECC serves the SECC leaf with its sub-CAs and the cached OCSP response, over TLS 1.2 with
// the ISO 15118-2 suite and over TLS 1.3.
func TestSECCServerServesChainAndStaple(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	staple := ocspResponse(t, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2, ocsp.Good, time.Now().Add(24*time.Hour))
	cacheOCSP(t, f.st, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, staple)
	cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, cfg, nil)

	tests := []struct {
		name      string
		version   uint16
		suites    []uint16
		wantSuite uint16
	}{
		{"ISO 15118-2", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256},
		{"TLS 1.2 GCM extra", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"ISO 15118-20", tls.VersionTLS13, nil, tls.TLS_AES_128_GCM_SHA256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := dial(addr, carConfig(f, tc.version, tc.suites...))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if h := next(t, results); h.err != nil {
				t.Fatalf("server: %v", h.err)
			}
			if cs.Version != tc.version || cs.CipherSuite != tc.wantSuite {
				t.Errorf("negotiated %s with %s, want %s with %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite),
					tls.VersionName(tc.version), tls.CipherSuiteName(tc.wantSuite))
			}
			want := []*x509.Certificate{f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA1.Cert}
			if len(cs.PeerCertificates) != len(want) {
				t.Fatalf("chain %v, want %v", subjects(cs.PeerCertificates), subjects(want))
			}
			for i := range want {
				if !cs.PeerCertificates[i].Equal(want[i]) {
					t.Fatalf("chain %v, want %v", subjects(cs.PeerCertificates), subjects(want))
				}
			}
			if !bytes.Equal(cs.OCSPResponse, staple) {
				t.Errorf("stapled %d bytes, want the %d cached bytes", len(cs.OCSPResponse), len(staple))
			}
		})
	}

	// Go offers only the CBC suite ISO 15118-2 requires when it is listed; a client that offers
	// none of the SECC's TLS 1.2 suites is refused.
	if _, err := dial(addr, carConfig(f, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)); err == nil {
		t.Error("a TLS 1.2 client without an ISO 15118 suite was served")
	}
	<-results
}

func TestSECCServerMaxVersion(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if _, err := SECCServerConfig(f.st, SECCOptions{MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("MaxVersion TLS 1.1 accepted")
	}
	cfg, err := SECCServerConfig(f.st, SECCOptions{MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, cfg, nil)
	client := carConfig(f, 0)
	client.MinVersion, client.MaxVersion = 0, 0
	cs, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	<-results
	if cs.Version != tls.VersionTLS12 {
		t.Errorf("negotiated %s, want TLS 1.2", tls.VersionName(cs.Version))
	}
}

// A staple past its nextUpdate is not served; the certificate still is.
func TestSECCServerDropsStaleStaple(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	staple := ocspResponse(t, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2, ocsp.Good, time.Now().Add(time.Hour))
	cacheOCSP(t, f.st, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, staple)
	c := newClock()
	cfg, err := SECCServerConfig(f.st, SECCOptions{Time: c.Now, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || !bytes.Equal(cert.OCSPStaple, staple) {
		t.Fatalf("fresh staple: err %v, staple %d bytes", err, len(cert.OCSPStaple))
	}
	c.Set(time.Now().Add(2 * time.Hour))
	cert, err = cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert.OCSPStaple != nil || !cert.Leaf.Equal(f.pki.SECCLeaf.Cert) {
		t.Fatalf("stale staple: err %v, staple %d bytes; want the leaf without a staple", err, len(cert.OCSPStaple))
	}
}

// A leaf that expires is never served, whether the store or only the config's clock has moved
// past it; with no usable leaf the handshake fails with an error naming the reason.
func TestSECCServerNeverServesExpiredLeaf(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tlsClock := newClock()
	cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events, MaxAge: time.Hour, Time: tlsClock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{}); err != nil {
		t.Fatalf("valid leaf: %v", err)
	}
	afterExpiry := f.pki.SECCLeaf.Cert.NotAfter.Add(time.Minute)

	// Only the config's clock has moved: the store (its clock behind) still offers the leaf and
	// the cached certificate is still there, but neither is served.
	tlsClock.Set(afterExpiry)
	_, err = cfg.GetCertificate(&tls.ClientHelloInfo{})
	var le *LeafError
	if !errors.As(err, &le) || le.Status != store.InfoNotFoundValid || !strings.Contains(err.Error(), "expired on") {
		t.Fatalf("config clock past expiry: err = %v, want NotFoundValid naming the expiry", err)
	}

	// Both clocks have moved: the store has no valid leaf.
	f.clock.Set(afterExpiry)
	_, err = cfg.GetCertificate(&tls.ClientHelloInfo{})
	if !errors.As(err, &le) || le.Status != store.InfoNotFoundValid {
		t.Fatalf("store clock past expiry: err = %v, want NotFoundValid", err)
	}

	// Over the wire the car gets an alert and the server's handshake error names the reason.
	addr, results := serveTLS(t, cfg, nil)
	if _, err := dial(addr, carConfig(f, tls.VersionTLS12)); err == nil {
		t.Fatal("handshake succeeded without a valid leaf")
	}
	if h := next(t, results); h.err == nil || !strings.Contains(h.err.Error(), "NotFoundValid") {
		t.Errorf("server handshake error %v, want one naming NotFoundValid", h.err)
	}
}

func TestSECCServerNoLeaf(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*testpki.Layout)
		want    store.InfoStatus
	}{
		{"none installed", func(l *testpki.Layout) { removeFiles(t, l.SECCLeafCert, l.SECCChain) }, store.InfoNotFound},
		{"no key", func(l *testpki.Layout) { removeFiles(t, l.SECCLeafKey) }, store.InfoPrivateKeyNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{prepare: tc.prepare})
			cfg, err := SECCServerConfig(f.st, SECCOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.GetCertificate(&tls.ClientHelloInfo{})
			var le *LeafError
			if !errors.As(err, &le) || le.Status != tc.want || le.Type != store.LeafV2G || !strings.Contains(err.Error(), string(tc.want)) {
				t.Fatalf("err = %v, want a V2G *LeafError naming %s", err, tc.want)
			}
		})
	}
}

// A new SECC leaf is served from the next handshake when the store's event arrives; without
// events the cached one is served until MaxAge.
func TestSECCServerReloadsOnEvents(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	withEvents, err := SECCServerConfig(f.st, SECCOptions{Events: f.events, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	without, err := SECCServerConfig(f.st, SECCOptions{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*tls.Config{withEvents, without} {
		if c, err := cfg.GetCertificate(&tls.ClientHelloInfo{}); err != nil || !c.Leaf.Equal(f.pki.SECCLeaf.Cert) {
			t.Fatalf("before the update: %v", err)
		}
	}
	newLeaf := installLeaf(t, f.st, store.LeafV2G, f.pki.CPOSubCA2, time.Now().AddDate(testpki.LeafValidityYears+1, 0, 0))

	addr, results := serveTLS(t, withEvents, nil)
	cs, err := dial(addr, carConfig(f, tls.VersionTLS12))
	if err != nil {
		t.Fatal(err)
	}
	<-results
	if !cs.PeerCertificates[0].Equal(newLeaf) || len(cs.PeerCertificates) != 3 {
		t.Errorf("with events: served %v serial %x, want the new leaf %x with its sub-CAs",
			subjects(cs.PeerCertificates), cs.PeerCertificates[0].SerialNumber, newLeaf.SerialNumber)
	}
	if c, err := without.GetCertificate(&tls.ClientHelloInfo{}); err != nil || !c.Leaf.Equal(f.pki.SECCLeaf.Cert) {
		t.Errorf("without events: want the cached leaf until MaxAge (err %v)", err)
	}
}

// A chain file may be missing: a leaf stored alone is completed from the V2G domain's sub-CAs.
func TestSECCServerCompletesChainFromDomain(t *testing.T) {
	f := newFixture(t, fixtureOptions{prepare: func(l *testpki.Layout) {
		removeFiles(t, l.SECCChain)
	}})
	// The sub-CAs are installed in the V2G domain, where the store finds them.
	for _, ca := range []*testpki.Issued{f.pki.CPOSubCA1, f.pki.CPOSubCA2} {
		if res := f.st.InstallCACertificate(string(ca.CertPEM()), store.CAV2G); res != store.InstallAccepted {
			t.Fatalf("InstallCACertificate(%s): %s", ca.Cert.Subject.CommonName, res)
		}
	}
	cfg, err := SECCServerConfig(f.st, SECCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameChain(c.Certificate, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA1.Cert) {
		t.Errorf("served %d certificates, want leaf, Sub-CA 2, Sub-CA 1", len(c.Certificate))
	}
}
