package certs

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/testpki"
)

var (
	ocspPKIOnce sync.Once
	ocspPKIVal  *testpki.PKI
	ocspPKIErr  error
)

func ocspTestPKI(t testing.TB) *testpki.PKI {
	t.Helper()
	ocspPKIOnce.Do(func() { ocspPKIVal, ocspPKIErr = testpki.Generate(testpki.Options{}) })
	if ocspPKIErr != nil {
		t.Fatal(ocspPKIErr)
	}
	return ocspPKIVal
}

func ocspSignerOf(t testing.TB, i *testpki.Issued) testtool.OCSPSigner {
	t.Helper()
	key, err := i.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	return testtool.OCSPSigner{Cert: i.Cert, KeyPEM: key}
}

// TestCheckOCSPResponseOpenSSLForms: the forms an OpenSSL responder sends are all judged by the
// signature, not by whether a certificate came along. OpenSSL's default embeds the signer's
// certificate; for a leaf under a sub-CA that is the sub-CA, which its root signed, not itself
// (x/crypto alone refuses that form). A delegated responder needs the issuer's signature, the
// OCSPSigning usage and to be valid now.
func TestCheckOCSPResponseOpenSSLForms(t *testing.T) {
	p := ocspTestPKI(t)
	o := testtool.NewOpenSSLOCSP(t)
	leaf, issuer := p.SECCLeaf.Cert, p.CPOSubCA2
	now := time.Now()
	// The responder's certificate ends before the responses' nextUpdate (a week).
	responder, err := issuer.Issue(testpki.Spec{CommonName: "OCSP responder", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	if err != nil {
		t.Fatal(err)
	}
	noEKU, err := issuer.Issue(testpki.Spec{CommonName: "not a responder", KeyUsage: x509.KeyUsageDigitalSignature})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := p.MOSubCA2.Issue(testpki.Spec{CommonName: "foreign responder", KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		signer  *testpki.Issued
		extra   []string
		at      time.Time
		wantErr string // "" accepted
	}{
		{name: "issuer, certificate embedded (openssl default)", signer: issuer},
		{name: "issuer, -resp_no_certs", signer: issuer, extra: []string{"-resp_no_certs"}},
		{name: "delegated responder", signer: responder},
		{name: "delegated responder, no OCSPSigning usage", signer: noEKU, wantErr: "not an OCSP responder"},
		{name: "responder of another CA", signer: stranger, wantErr: "signature"},
		{name: "stale", signer: issuer, at: now.Add(8 * 24 * time.Hour), wantErr: "stale"},
		{name: "delegated responder after its end", signer: responder, at: responder.Cert.NotAfter.Add(time.Hour), wantErr: "not valid now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der := o.Respond(leaf, issuer.Cert, ocspSignerOf(t, tc.signer), false, tc.extra...)
			at := now
			if !tc.at.IsZero() {
				at = tc.at
			}
			resp, err := CheckOCSPResponse(der, leaf, issuer.Cert, at)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if resp.Status != ocsp.Good || resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
					t.Fatalf("status %d serial %v", resp.Status, resp.SerialNumber)
				}
				want := resp.NextUpdate
				if tc.signer == responder && responder.Cert.NotAfter.Before(want) {
					want = responder.Cert.NotAfter
				}
				if got := OCSPUsableUntil(resp, issuer.Cert); !got.Equal(want) {
					t.Errorf("usable until %v, want %v", got, want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.wantErr == "stale" && !errors.Is(err, ErrOCSPStale) || !strings.Contains(err.Error(), tc.wantErr) && tc.wantErr != "stale" {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}

	// The response about the leaf does not pass for a certificate of another issuer that has
	// the same serial (x/crypto matches by serial alone).
	der := o.Respond(leaf, issuer.Cert, ocspSignerOf(t, issuer), false)
	twin, err := p.MOSubCA2.Issue(testpki.Spec{CommonName: "twin"})
	if err != nil {
		t.Fatal(err)
	}
	twin.Cert.SerialNumber = leaf.SerialNumber
	if _, err := CheckOCSPResponse(der, twin.Cert, p.MOSubCA2.Cert, now); err == nil {
		t.Fatal("a response about the leaf passed for another issuer's certificate")
	}
}

// FuzzCheckOCSPResponse feeds the shared OCSP judgement arbitrary DER for the SECC leaf: it never
// panics, and what it accepts is a response for that certificate.
func FuzzCheckOCSPResponse(f *testing.F) {
	p := ocspTestPKI(f)
	now := time.Now()
	for _, c := range []struct{ cert, issuer *testpki.Issued }{{p.SECCLeaf, p.CPOSubCA2}, {p.CSMSLeaf, p.CSMSRoot}} {
		der, err := ocsp.CreateResponse(c.issuer.Cert, c.issuer.Cert, ocsp.Response{
			Status: ocsp.Good, SerialNumber: c.cert.Cert.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		}, c.issuer.Key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x01})
	f.Add([]byte{})
	f.Add(p.SECCLeaf.Cert.Raw)
	f.Fuzz(func(t *testing.T, der []byte) {
		resp, err := CheckOCSPResponse(der, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, now)
		if err != nil {
			return
		}
		if resp == nil || resp.SerialNumber == nil || resp.SerialNumber.Cmp(p.SECCLeaf.Cert.SerialNumber) != 0 {
			t.Fatalf("accepted a response for another serial: %+v", resp)
		}
		if checkCertID(resp, p.SECCLeaf.Cert, p.CPOSubCA2.Cert) != nil {
			t.Fatal("accepted a response whose CertID is not the leaf's")
		}
	})
}
