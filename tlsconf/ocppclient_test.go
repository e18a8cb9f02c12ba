package tlsconf

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// csmsServer is the tls.Config of a CSMS with cert, requiring a client certificate under the
// CSMS root when clientAuth is set.
func csmsServer(t testing.TB, f *fixture, cert tls.Certificate, clientAuth bool) *tls.Config {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientAuth {
		pool := x509.NewCertPool()
		pool.AddCert(f.pki.CSMSRoot.Cert)
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

func TestOCPPClientConfigProfiles(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, p := range []int{0, 1} {
		if _, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: p}); !errors.Is(err, ErrNoTLS) {
			t.Errorf("profile %d: err = %v, want ErrNoTLS", p, err)
		}
	}
	for _, p := range []int{-1, 4} {
		if _, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: p}); err == nil || errors.Is(err, ErrNoTLS) {
			t.Errorf("profile %d: err = %v, want an unknown-profile error", p, err)
		}
	}
	cfg2, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2})
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.GetClientCertificate != nil || cfg2.MinVersion != tls.VersionTLS12 {
		t.Errorf("profile 2: client certificate hook %v, MinVersion %#x; want none and TLS 1.2", cfg2.GetClientCertificate != nil, cfg2.MinVersion)
	}
	cfg3, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 3})
	if err != nil {
		t.Fatal(err)
	}
	if cfg3.GetClientCertificate == nil {
		t.Error("profile 3 has no client certificate hook")
	}
}

// Profile 2 verifies the CSMS server and sends no client certificate; a CSMS that requires one
// refuses it, a CSMS that does not accepts it.
func TestOCPPClientProfile2(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), false), nil)
	st, err := dial(addr, cfg)
	if err != nil {
		t.Fatalf("profile 2 handshake: %v", err)
	}
	if h := next(t, results); h.err != nil || len(h.state.PeerCertificates) != 0 {
		t.Fatalf("server: err %v, %d client certificates; want none", h.err, len(h.state.PeerCertificates))
	}
	if st.PeerCertificates[0].Subject.CommonName != "localhost" {
		t.Errorf("server certificate %q", st.PeerCertificates[0].Subject.CommonName)
	}

	addr, results = serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), true), nil)
	_, _ = dial(addr, cfg)
	if h := next(t, results); h.err == nil {
		t.Error("a CSMS requiring a client certificate accepted profile 2")
	}
}

// Profile 3 presents the store's CSMS leaf, and after update_leaf_certificate the new one on the
// next connection: at once with Events, after MaxAge without, at once with no cache.
func TestOCPPClientProfile3FollowsLeafUpdates(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	addr, results := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), true), nil)
	configs := map[string]*tls.Config{}
	for name, o := range map[string]OCPPOptions{
		"events":   {Events: f.events, MaxAge: time.Hour},
		"no-event": {MaxAge: time.Hour},
		"no-cache": {MaxAge: -1},
	} {
		o.SecurityProfile, o.ServerName, o.Time = 3, "localhost", f.clock.Now
		cfg, err := OCPPClientConfig(f.st, o)
		if err != nil {
			t.Fatal(err)
		}
		configs[name] = cfg
	}
	presented := func(name string) *x509.Certificate {
		t.Helper()
		if _, err := dial(addr, configs[name]); err != nil {
			t.Fatalf("%s: handshake: %v", name, err)
		}
		h := next(t, results)
		if h.err != nil {
			t.Fatalf("%s: server: %v", name, h.err)
		}
		return h.state.PeerCertificates[0]
	}
	for name := range configs {
		if got := presented(name); !got.Equal(f.pki.CSMSLeaf.Cert) {
			t.Fatalf("%s: presented %q, want the installed CSMS leaf", name, got.Subject)
		}
	}

	newLeaf := installLeaf(t, f.st, store.LeafCSMS, f.pki.CSMSRoot, time.Now().AddDate(testpki.LeafValidityYears+1, 0, 0))
	for name, want := range map[string]*x509.Certificate{
		"events":   newLeaf,
		"no-event": f.pki.CSMSLeaf.Cert, // cached until MaxAge: no event reached this config
		"no-cache": newLeaf,
	} {
		if got := presented(name); !got.Equal(want) {
			t.Errorf("%s: after the update presented serial %x, want %x", name, got.SerialNumber, want.SerialNumber)
		}
	}
}

// The server must chain to the CSMS domain: a certificate of another domain, a wrong name, or no
// name at all is refused.
func TestOCPPClientVerifiesServer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	other, err := f.pki.V2GRoot.Issue(testpki.Spec{CommonName: "localhost", DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), false), nil)
	foreign, _ := serveTLS(t, csmsServer(t, f, other.TLSCertificate(), false), nil)

	tests := []struct {
		name, addr, serverName string
		wantErr                string // "" means success
	}{
		{"CSMS server by DNS name", good, "localhost", ""},
		{"CSMS server by IP", good, "127.0.0.1", ""},
		{"other domain", foreign, "localhost", "certificate signed by unknown authority"},
		{"wrong name", good, "csms.example.com", "not csms.example.com"},
		{"IP without ServerName", good, "", "no server name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2, ServerName: tc.serverName})
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(tc.addr, cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("handshake: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			var cve *tls.CertificateVerificationError
			if tc.wantErr != "" && !errors.As(err, &cve) {
				t.Errorf("err %T is not a *tls.CertificateVerificationError", err)
			}
			if tc.name == "other domain" {
				var uae x509.UnknownAuthorityError
				if !errors.As(err, &uae) {
					t.Errorf("err does not wrap x509.UnknownAuthorityError: %v", err)
				}
			}
		})
	}
}

// A CSMS root installed after the config was built is trusted from the next connection on.
func TestOCPPClientTrustFollowsStore(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	root2, err := testpki.SelfSigned(testpki.Spec{CommonName: "CSMSRootCA2", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := root2.Issue(testpki.Spec{CommonName: "localhost", DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serveTLS(t, csmsServer(t, f, srv.TLSCertificate(), false), nil)
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2, ServerName: "localhost", Events: f.events, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, cfg); err == nil {
		t.Fatal("a server under a root not installed was accepted")
	}
	if res := f.st.InstallCACertificate(string(root2.CertPEM()), store.CACSMS); res != store.InstallAccepted {
		t.Fatalf("InstallCACertificate: %s", res)
	}
	if _, err := dial(addr, cfg); err != nil {
		t.Fatalf("after installing its root: %v", err)
	}
}

// UseSystemRoots adds the system's roots to the CSMS domain (UseSslDefaultVerifyPaths).
func TestOCPPClientSystemRoots(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	public, err := testpki.SelfSigned(testpki.Spec{CommonName: "Public Root", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := public.Issue(testpki.Spec{CommonName: "localhost", DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	saved := systemRoots
	t.Cleanup(func() { systemRoots = saved })
	systemRoots = func() (*x509.CertPool, error) {
		p := x509.NewCertPool()
		p.AddCert(public.Cert)
		return p, nil
	}
	publicAddr, _ := serveTLS(t, csmsServer(t, f, srv.TLSCertificate(), false), nil)
	csmsAddr, _ := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), false), nil)

	for _, system := range []bool{false, true} {
		cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2, ServerName: "localhost", UseSystemRoots: system})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(publicAddr, cfg); (err == nil) != system {
			t.Errorf("UseSystemRoots=%v: server under a system root: err = %v", system, err)
		}
		if _, err := dial(csmsAddr, cfg); err != nil {
			t.Errorf("UseSystemRoots=%v: CSMS server: %v", system, err)
		}
	}
}

// With no CSMS root installed (and no system roots asked for) every server is refused with
// ErrNoTrustAnchor.
func TestOCPPClientNoTrustAnchor(t *testing.T) {
	f := newFixture(t, fixtureOptions{prepare: func(l *testpki.Layout) { removeFiles(t, l.CSMSBundle) }})
	addr, _ := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), false), nil)
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, cfg); !errors.Is(err, ErrNoTrustAnchor) {
		t.Fatalf("err = %v, want ErrNoTrustAnchor", err)
	}
}

// A server stapling an OCSP response that says its certificate is revoked is refused; a good
// one is accepted.
func TestOCPPClientRefusesRevokedStaple(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 2, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{ocsp.Good, ocsp.Revoked} {
		cert := f.pki.CSMSServer.TLSCertificate()
		cert.OCSPStaple = ocspResponse(t, f.pki.CSMSServer.Cert, f.pki.CSMSRoot, status, time.Now().Add(time.Hour))
		addr, _ := serveTLS(t, csmsServer(t, f, cert, false), nil)
		_, err := dial(addr, cfg)
		if status == ocsp.Good && err != nil {
			t.Errorf("good staple: %v", err)
		}
		if status == ocsp.Revoked && (err == nil || !strings.Contains(err.Error(), "revoked")) {
			t.Errorf("revoked staple: err = %v, want a revocation error", err)
		}
	}
}

// Without a usable CSMS leaf profile 3 fails the handshake with a *LeafError naming the reason.
func TestOCPPClientNoLeaf(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*testpki.Layout)
		clock   time.Time
		want    store.InfoStatus
	}{
		{"none installed", func(l *testpki.Layout) { removeFiles(t, l.CSMSLeafCert) }, time.Time{}, store.InfoNotFound},
		{"expired", nil, time.Now().AddDate(testpki.LeafValidityYears, 1, 0), store.InfoNotFoundValid},
		{"no key", func(l *testpki.Layout) { removeFiles(t, l.CSMSLeafKey) }, time.Time{}, store.InfoPrivateKeyNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{prepare: tc.prepare})
			if !tc.clock.IsZero() {
				f.clock.Set(tc.clock)
			}
			addr, results := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), true), nil)
			cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 3, ServerName: "localhost", Time: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(addr, cfg)
			var le *LeafError
			if !errors.As(err, &le) || le.Status != tc.want || le.Type != store.LeafCSMS {
				t.Fatalf("err = %v, want a CSMS *LeafError with status %s", err, tc.want)
			}
			if !strings.Contains(err.Error(), string(tc.want)) {
				t.Errorf("message %q does not name %s", err, tc.want)
			}
			<-results
		})
	}
}

// The key comes through LoadKey when one is given (a TPM or PKCS#11 backend), and through the
// file backend with the store's password otherwise, also for encrypted key files.
func TestOCPPClientKeyLoader(t *testing.T) {
	const password = "123456"
	f := newFixture(t, fixtureOptions{password: password})
	addr, results := serveTLS(t, csmsServer(t, f, f.pki.CSMSServer.TLSCertificate(), true), nil)

	var calls atomic.Int32
	counting := func(keyFile []byte) (crypto.Signer, error) {
		calls.Add(1)
		return keys.FileBackend{Password: []byte(password)}.Signer(keyFile)
	}
	for name, load := range map[string]KeyLoader{"default": nil, "custom": counting} {
		cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 3, ServerName: "localhost", LoadKey: load})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(addr, cfg); err != nil {
			t.Fatalf("%s loader: %v", name, err)
		}
		if h := next(t, results); h.err != nil || !h.state.PeerCertificates[0].Equal(f.pki.CSMSLeaf.Cert) {
			t.Fatalf("%s loader: server: %v", name, h.err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("custom loader called %d times, want 1", calls.Load())
	}

	failing := func([]byte) (crypto.Signer, error) { return nil, errors.New("token not present") }
	cfg, err := OCPPClientConfig(f.st, OCPPOptions{SecurityProfile: 3, ServerName: "localhost", LoadKey: failing})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial(addr, cfg)
	var le *LeafError
	if !errors.As(err, &le) || le.Status != store.InfoPrivateKeyNotFound || !strings.Contains(err.Error(), "token not present") {
		t.Fatalf("failing loader: err = %v, want PrivateKeyNotFound with the loader's reason", err)
	}
	<-results
}
