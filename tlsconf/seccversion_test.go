package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// One SECC server, two standards: ISO 15118-2 cars speak TLS 1.2 and get the P-256 leaf, ISO
// 15118-20 cars speak TLS 1.3 and get the P-521 leaf, each with its own chain and staple.

var (
	pki20Once sync.Once
	pki20Val  *testpki.PKI
	pki20Err  error
	pkiEVOnce sync.Once
	pkiEVVal  *testpki.PKI
	pkiEVErr  error
)

// pki20 is the standard PKI with the ISO 15118-20 chain.
func pki20(t testing.TB) *testpki.PKI {
	t.Helper()
	pki20Once.Do(func() { pki20Val, pki20Err = testpki.Generate(testpki.Options{ISO15118_20: true}) })
	if pki20Err != nil {
		t.Fatal(pki20Err)
	}
	return pki20Val
}

// pkiEVSEs is pki20 with the leaves of two EVSEs.
func pkiEVSEs(t testing.TB) *testpki.PKI {
	t.Helper()
	pkiEVOnce.Do(func() {
		pkiEVVal, pkiEVErr = testpki.Generate(testpki.Options{ISO15118_20: true, SeccIDs: []string{"DEABCS1EVSE1", "DEABCS1EVSE2"}})
	})
	if pkiEVErr != nil {
		t.Fatal(pkiEVErr)
	}
	return pkiEVVal
}

// newFixtureOf is newFixture over the PKI p.
func newFixtureOf(t testing.TB, p *testpki.PKI, prepare func(*testpki.Layout)) *fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := p.WriteLayout(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(l)
	}
	f := &fixture{pki: p, layout: l, events: &Events{}, clock: newClock()}
	f.st, err = store.Open(store.DefaultConfig(dir), store.Options{OnEvent: f.events.Publish, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sClient is what `openssl s_client -tlsX -status -showcerts` saw.
type sClient struct {
	out     string
	sent    []*x509.Certificate
	stapled string
}

// runSClient connects s_client with the version flag (-tls1_2, -tls1_3; "" offers both) to addr,
// verifying against the V2G bundle.
func runSClient(t *testing.T, f *fixture, addr, version string) (sClient, error) {
	t.Helper()
	testtool.Require(t, "openssl")
	args := []string{"s_client", "-connect", addr}
	if version != "" {
		args = append(args, version)
	}
	out, err := runOpenSSL(t, "", append(args, "-status", "-CAfile", f.layout.V2GBundle, "-showcerts", "-verify_return_error")...)
	r := sClient{out: out, stapled: ocspSection(out)}
	if chainText, _, ok := strings.Cut(out, "Server certificate"); ok {
		r.sent, _ = certs.ParseCertificates([]byte(chainText))
	}
	return r, err
}

// sameCerts reports whether got is want, in order.
func sameCerts(got, want []*x509.Certificate) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			return false
		}
	}
	return true
}

func TestSECCServerTLS12AndTLS13WithOpenSSL(t *testing.T) {
	testtool.Require(t, "openssl")
	f := newFixtureOf(t, pki20(t), nil)
	p := f.pki
	staple2 := ocspResponse(t, p.SECCLeaf.Cert, p.CPOSubCA2, ocsp.Good, time.Now().Add(24*time.Hour))
	staple20 := ocspResponse(t, p.SECC20Leaf.Cert, p.CPO20SubCA2, ocsp.Good, time.Now().Add(48*time.Hour))
	cacheOCSP(t, f.st, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, staple2)
	cacheOCSP(t, f.st, p.SECC20Leaf.Cert, p.CPO20SubCA2.Cert, staple20)
	cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events, TLS13: TLS13OnlyV2G20})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, cfg, NewHelloConn)

	cases := []struct {
		flag, protocol string
		chain          []*x509.Certificate
		staple         []byte
	}{
		{"-tls1_2", "TLSv1.2", []*x509.Certificate{p.SECCLeaf.Cert, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert}, staple2},
		{"-tls1_3", "TLSv1.3", []*x509.Certificate{p.SECC20Leaf.Cert, p.CPO20SubCA2.Cert, p.CPO20SubCA1.Cert}, staple20},
		// Offering both, the car negotiates TLS 1.3, and the leaf follows the negotiated version.
		{"", "TLSv1.3", []*x509.Certificate{p.SECC20Leaf.Cert, p.CPO20SubCA2.Cert, p.CPO20SubCA1.Cert}, staple20},
	}
	for _, c := range cases {
		t.Run("flag"+c.flag, func(t *testing.T) {
			r, err := runSClient(t, f, addr, c.flag)
			if err != nil {
				t.Fatalf("%v\n%s", err, r.out)
			}
			if h := next(t, results); h.err != nil {
				t.Fatalf("server: %v", h.err)
			}
			for _, want := range []string{"Protocol  : " + c.protocol, "Verify return code: 0 (ok)"} {
				if !strings.Contains(r.out, want) {
					t.Errorf("s_client output lacks %q:\n%s", want, r.out)
				}
			}
			if !sameCerts(r.sent, c.chain) {
				t.Errorf("s_client received %v, want %v", subjects(r.sent), subjects(c.chain))
			}
			cached, err := runOpenSSL(t, "", "ocsp", "-respin", writeFile(t, "cached.der", c.staple), "-resp_text", "-noverify")
			if err != nil {
				t.Fatal(err)
			}
			if r.stapled == "" || normalize(r.stapled) != normalize(cached) {
				t.Errorf("stapled response is not the leaf's cached one\nstapled:\n%s\ncached:\n%s", r.stapled, cached)
			}
		})
	}
}

// With only one kind installed, the other version's handshake fails with a *LeafError that names
// the missing kind and why; the kind that is there keeps working.
func TestSECCServerOneKindOnly(t *testing.T) {
	testtool.Require(t, "openssl")
	only2 := newFixture(t, fixtureOptions{})
	only20 := newFixtureOf(t, pki20(t), func(l *testpki.Layout) { removeFiles(t, l.SECCLeafCert, l.SECCChain, l.SECCLeafKey) })
	cases := []struct {
		name     string
		f        *fixture
		opts     SECCOptions
		okFlag   string
		failFlag string
		wantType store.LeafType
		why      []string
	}{
		{"only V2G, TLS 1.3 needs V2G20", only2, SECCOptions{TLS13: TLS13OnlyV2G20}, "-tls1_2", "-tls1_3", store.LeafV2G20,
			[]string{"TLS 1.3 (ISO 15118-20) handshake needs a V2G20 leaf", "only V2G leaves usable", "NotFound"}},
		{"only V2G20, TLS 1.2 needs V2G", only20, SECCOptions{}, "-tls1_3", "-tls1_2", store.LeafV2G,
			[]string{"TLS 1.2 (ISO 15118-2) handshake needs a V2G leaf", "only V2G20 leaves usable", "NotFound"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := SECCServerConfig(c.f.st, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			addr, results := serveTLS(t, cfg, nil)
			if r, err := runSClient(t, c.f, addr, c.okFlag); err != nil {
				t.Fatalf("%s: %v\n%s", c.okFlag, err, r.out)
			}
			if h := next(t, results); h.err != nil {
				t.Fatalf("%s: server: %v", c.okFlag, h.err)
			}
			if r, err := runSClient(t, c.f, addr, c.failFlag); err == nil {
				t.Fatalf("%s succeeded:\n%s", c.failFlag, r.out)
			}
			h := next(t, results)
			var le *LeafError
			if !errors.As(h.err, &le) || le.Type != c.wantType || le.Status != store.InfoNotFound {
				t.Fatalf("%s: server error %v, want a %s *LeafError with NotFound", c.failFlag, h.err, c.wantType)
			}
			for _, w := range c.why {
				if !strings.Contains(h.err.Error(), w) {
					t.Errorf("error %q does not say %q", h.err, w)
				}
			}
		})
	}
}

// Without TLS13OnlyV2G20, a station that has -2 leaves only serves TLS 1.3 cars as before (the
// -2 leaf); once a -20 leaf is there, TLS 1.3 gets it.
func TestSECCServerTLS13FallsBackToV2G(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cfg, err := SECCServerConfig(f.st, SECCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serveTLS(t, cfg, nil)
	cs, err := dial(addr, carConfig(f, tls.VersionTLS13))
	if err != nil || !cs.PeerCertificates[0].Equal(f.pki.SECCLeaf.Cert) {
		t.Fatalf("TLS 1.3 without -20 leaves: %v", err)
	}
	f20 := newFixtureOf(t, pki20(t), nil)
	cfg20, err := SECCServerConfig(f20.st, SECCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr20, _ := serveTLS(t, cfg20, nil)
	pool := x509.NewCertPool()
	pool.AddCert(f20.pki.V2GRoot.Cert)
	pool.AddCert(f20.pki.V2G20Root.Cert)
	// A car offering both versions negotiates TLS 1.3 and so gets the -20 leaf; one capped at
	// TLS 1.2 the -2 leaf; a server capped at TLS 1.2 serves the -2 leaf to both.
	for _, c := range []struct {
		name      string
		addr      string
		clientMax uint16
		want      *x509.Certificate
	}{
		{"client 1.2-1.3", addr20, tls.VersionTLS13, f20.pki.SECC20Leaf.Cert},
		{"client 1.2 only", addr20, tls.VersionTLS12, f20.pki.SECCLeaf.Cert},
	} {
		cs, err := dial(c.addr, &tls.Config{RootCAs: pool, ServerName: "x", MinVersion: tls.VersionTLS12, MaxVersion: c.clientMax,
			InsecureSkipVerify: true})
		if err != nil || !cs.PeerCertificates[0].Equal(c.want) {
			t.Errorf("%s: %v, got %v", c.name, err, subjects(cs.PeerCertificates))
		}
	}
	cfg12, err := SECCServerConfig(f20.st, SECCOptions{MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	addr12, _ := serveTLS(t, cfg12, nil)
	cs, err = dial(addr12, &tls.Config{ServerName: "x", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	if err != nil || cs.Version != tls.VersionTLS12 || !cs.PeerCertificates[0].Equal(f20.pki.SECCLeaf.Cert) {
		t.Errorf("server capped at TLS 1.2: %v %x %v", err, cs.Version, subjects(cs.PeerCertificates))
	}
}

// Two EVSEs, one config each with its SeccID: each serves its own -2 and -20 leaf to OpenSSL.
func TestSECCServerPerEVSEWithOpenSSL(t *testing.T) {
	testtool.Require(t, "openssl")
	f := newFixtureOf(t, pkiEVSEs(t), nil)
	for _, ev := range f.pki.EVSEs {
		cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events, SeccID: ev.SeccID, TLS13: TLS13OnlyV2G20})
		if err != nil {
			t.Fatal(err)
		}
		addr, results := serveTLS(t, cfg, nil)
		for _, c := range []struct {
			flag string
			want []*x509.Certificate
		}{
			{"-tls1_2", []*x509.Certificate{ev.V2G.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA1.Cert}},
			{"-tls1_3", []*x509.Certificate{ev.V2G20.Cert, f.pki.CPO20SubCA2.Cert, f.pki.CPO20SubCA1.Cert}},
		} {
			r, err := runSClient(t, f, addr, c.flag)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", ev.SeccID, c.flag, err, r.out)
			}
			if h := next(t, results); h.err != nil {
				t.Fatalf("server: %v", h.err)
			}
			if !sameCerts(r.sent, c.want) || r.sent[0].Subject.CommonName != ev.SeccID {
				t.Errorf("%s %s: got %v, want %v", ev.SeccID, c.flag, subjects(r.sent), subjects(c.want))
			}
		}
	}
}
