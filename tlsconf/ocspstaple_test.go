package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/testpki"
)

// sClientStaple connects `openssl s_client -status` to addr (TLS 1.2 with the ISO 15118-2 suite,
// or TLS 1.3) and returns the OCSP response section it printed, "" when the server stapled none.
func sClientStaple(t *testing.T, addr, caFile string, tls12 bool) string {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-status", "-CAfile", caFile, "-verify_return_error"}
	if tls12 {
		args = append(args, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256")
	} else {
		args = append(args, "-tls1_3")
	}
	out, err := runOpenSSL(t, "", args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Fatalf("s_client did not verify the SECC chain:\n%s", out)
	}
	if strings.Contains(out, "OCSP response: no response sent") {
		return ""
	}
	return ocspSection(out)
}

// goClientStaple is the staple a Go client receives, byte for byte (the chain is checked by the
// s_client runs; this client only reads the bytes).
func goClientStaple(t *testing.T, addr string, _ *fixture) []byte {
	t.Helper()
	st, err := dial(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return st.OCSPResponse
}

// TestSECCServerStaplesOpenSSLResponses: the responses an OpenSSL responder makes — its default
// form, which embeds the signer's certificate (here CPO Sub-CA 2, the leaf's issuer), the form
// without certificates (-resp_no_certs), and a delegated responder's (OCSPSigning usage) — are
// stapled byte for byte, by a server that was already running when update_ocsp_cache cached the
// response (the store's event makes it rebuild; MaxAge alone would wait a minute) and by one
// built afterwards. The store and the server judge the response by one function: what the store
// accepts and names in the leaf info is what the server staples.
func TestSECCServerStaplesOpenSSLResponses(t *testing.T) {
	o := testtool.NewOpenSSLOCSP(t)
	p := standardPKI(t)
	responder, err := p.CPOSubCA2.Issue(testpki.Spec{CommonName: "CPO OCSP responder", KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	if err != nil {
		t.Fatal(err)
	}
	signer := func(i *testpki.Issued) testtool.OCSPSigner {
		key, err := i.KeyPEM("")
		if err != nil {
			t.Fatal(err)
		}
		return testtool.OCSPSigner{Cert: i.Cert, KeyPEM: key}
	}
	for _, tc := range []struct {
		name   string
		signer *testpki.Issued
		extra  []string
	}{
		{"issuer, openssl default (certificate embedded)", p.CPOSubCA2, nil},
		{"issuer, -resp_no_certs", p.CPOSubCA2, []string{"-resp_no_certs"}},
		{"delegated responder", responder, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			leaf := f.pki.SECCLeaf.Cert
			running, err := SECCServerConfig(f.st, SECCOptions{Events: f.events})
			if err != nil {
				t.Fatal(err)
			}
			addr, results := serveTLS(t, running, nil)
			if got := sClientStaple(t, addr, f.layout.V2GBundle, true); got != "" {
				t.Fatalf("stapled before any response was cached:\n%s", got)
			}
			next(t, results)

			der := o.Respond(leaf, f.pki.CPOSubCA2.Cert, signer(tc.signer), false, tc.extra...)
			cacheOCSP(t, f.st, leaf, f.pki.CPOSubCA2.Cert, der)
			want := normalize(o.Text(der))
			// The server listening at at staples the cached response, to s_client (TLS 1.2 or
			// 1.3) and to a Go client.
			staples := func(server, at string, handshakes <-chan handshake, tls12 bool) {
				t.Helper()
				if got := sClientStaple(t, at, f.layout.V2GBundle, tls12); normalize(got) != want {
					t.Errorf("%s: s_client saw\n%s\nwant the cached response\n%s", server, got, want)
				}
				next(t, handshakes)
				if got := goClientStaple(t, at, f); !bytes.Equal(got, der) {
					t.Errorf("%s stapled %d bytes, want the %d cached bytes", server, len(got), len(der))
				}
				next(t, handshakes)
			}
			staples("running server", addr, results, true)

			fresh, err := SECCServerConfig(f.st, SECCOptions{})
			if err != nil {
				t.Fatal(err)
			}
			addr2, results2 := serveTLS(t, fresh, nil)
			staples("fresh server", addr2, results2, false)
		})
	}
}

// TestSECCServerDropsStapleOnGCEvent: the garbage collection of a stale response is a store
// event too: a running server stops stapling at once (here the response is refused by the
// judgement before it is stale, because its delegated responder has expired).
func TestSECCServerDropsStapleOnGCEvent(t *testing.T) {
	o := testtool.NewOpenSSLOCSP(t)
	f := newFixture(t, fixtureOptions{})
	p := f.pki
	now := time.Now()
	// The responder ends in an hour, the response's nextUpdate is a week ahead.
	responder, err := p.CPOSubCA2.Issue(testpki.Spec{CommonName: "short-lived responder", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := responder.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	der := o.Respond(p.SECCLeaf.Cert, p.CPOSubCA2.Cert, testtool.OCSPSigner{Cert: responder.Cert, KeyPEM: key}, false)
	cacheOCSP(t, f.st, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, der)
	cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serveTLS(t, cfg, nil)
	if got := goClientStaple(t, addr, f); !bytes.Equal(got, der) {
		t.Fatalf("stapled %d bytes, want the %d cached bytes", len(got), len(der))
	}
	next(t, results)

	gen := f.events.generation("V2G", "V2G")
	f.clock.Set(now.Add(2 * time.Hour))
	if rep := f.st.GarbageCollect(); len(rep.RemovedOCSP) != 1 {
		t.Fatalf("garbage collection removed %v, want the response", rep.RemovedOCSP)
	}
	if f.events.generation("V2G", "V2G") == gen {
		t.Fatal("the garbage collection of the response raised no V2G event")
	}
	// The config's own clock is the real time: only the event makes it rebuild.
	if got := goClientStaple(t, addr, f); got != nil {
		t.Fatalf("still stapling the removed response (%d bytes)", len(got))
	}
	next(t, results)
}
