package certs

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/testpki"
)

// tampered returns a copy of c whose signature no longer verifies; the DER stays well-formed.
func tampered(t testing.TB, c *x509.Certificate) *x509.Certificate {
	t.Helper()
	der := bytes.Clone(c.Raw)
	der[len(der)-1] ^= 0x01
	out, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tampered certificate does not parse: %v", err)
	}
	return out
}

func TestVerifyReasons(t *testing.T) {
	now := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)
	from, to := now.AddDate(-1, 0, 0), now.AddDate(3, 0, 0)
	valid := func(s *testpki.Spec) { s.NotBefore, s.NotAfter = from, to }
	until := func(end time.Time) func(*testpki.Spec) {
		return func(s *testpki.Spec) { s.NotBefore, s.NotAfter = from, end }
	}
	starting := func(start time.Time) func(*testpki.Spec) {
		return func(s *testpki.Spec) { s.NotBefore, s.NotAfter = start, to }
	}
	root := ptCA(t, nil, "Root", valid)
	sub := ptCA(t, root, "Sub", valid)
	leaf := ptLeaf(t, sub, "Leaf", valid)
	expiredLeaf := ptLeaf(t, sub, "Expired Leaf", until(now.Add(-time.Second)))
	futureLeaf := ptLeaf(t, sub, "Future Leaf", starting(now.AddDate(0, 1, 0)))
	shortSub := ptCA(t, root, "Short Sub", until(now.AddDate(0, 0, 10)))
	futureLeafOfShortSub := ptLeaf(t, shortSub, "Starts After Its Issuer Ends", starting(now.AddDate(0, 1, 0)))
	futureSub := ptCA(t, root, "Future Sub", starting(now.AddDate(0, 0, 7)))
	futureLeafOfFutureSub := ptLeaf(t, futureSub, "L4", starting(now.AddDate(0, 0, 8)))
	earlyLeaf := ptLeaf(t, futureSub, "L5", starting(now.AddDate(0, 0, 1)))
	expiredSub := ptCA(t, root, "Expired Sub", until(now.Add(-time.Hour)))
	leafOfExpiredSub := ptLeaf(t, expiredSub, "L1", valid)
	expiredRoot := ptCA(t, nil, "Expired Root", until(now.Add(-time.Hour)))
	subOfExpiredRoot := ptCA(t, expiredRoot, "Sub Of Expired Root", valid)
	leafOfExpiredRoot := ptLeaf(t, subOfExpiredRoot, "L2", valid)
	otherRoot := ptCA(t, nil, "Other Root", valid)
	otherSub := ptCA(t, otherRoot, "Other Sub", valid)
	otherLeaf := ptLeaf(t, otherSub, "Other Leaf", valid)
	selfLeaf := ptCA(t, nil, "Self Signed Leaf", func(s *testpki.Spec) { valid(s); s.IsCA = false; s.MaxPathLen = 0 })
	pl0 := ptCA(t, root, "PathLen0", func(s *testpki.Spec) { valid(s); s.MaxPathLen = 0 })
	subOfPl0 := ptCA(t, pl0, "Under PathLen0", valid)
	leafOfPl0 := ptLeaf(t, subOfPl0, "Too Deep", valid)
	noCertSign := ptCA(t, root, "No keyCertSign", func(s *testpki.Spec) { valid(s); s.KeyUsage = x509.KeyUsageDigitalSignature })
	leafOfNoCertSign := ptLeaf(t, noCertSign, "L3", valid)
	// A leaf that issues a certificate (testpki refuses; made by hand).
	kl := ptKey(t)
	leafOfLeaf := ptRaw(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Leaf Of Leaf"}, NotBefore: from, NotAfter: to}, leaf.Cert, kl.Public(), leaf.Key)
	critical := ptRaw(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Critical"}, NotBefore: from, NotAfter: to,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}}},
		sub.Cert, ptKey(t).Public(), sub.Key)
	// The caller's own root among the intermediates is never trusted.
	rogue := ptCA(t, nil, "Rogue Root", valid)
	rogueLeaf := ptLeaf(t, rogue, "Rogue Leaf", valid)

	cs := func(is ...*testpki.Issued) []*x509.Certificate {
		out := make([]*x509.Certificate, len(is))
		for i, c := range is {
			out[i] = c.Cert
		}
		return out
	}
	tests := []struct {
		name        string
		leaf        *x509.Certificate
		trusted     []*x509.Certificate
		inter       []*x509.Certificate
		allowFuture bool
		maxDepth    int
		want        Reason
		chain       []*testpki.Issued // expected chain when valid
	}{
		{"chain through an intermediate", leaf.Cert, cs(root), cs(sub), false, 0, ReasonValid, []*testpki.Issued{leaf, sub, root}},
		{"intermediate trusted", leaf.Cert, cs(root, sub), nil, false, 0, ReasonValid, []*testpki.Issued{leaf, sub, root}},
		{"partial chain", leaf.Cert, cs(sub), nil, false, 0, ReasonValid, []*testpki.Issued{leaf, sub}},
		{"root against itself", root.Cert, cs(root), nil, false, 0, ReasonValid, []*testpki.Issued{root}},
		{"only the root trusted, no intermediate", leaf.Cert, cs(root), nil, false, 0, ReasonIssuerNotFound, nil},
		{"intermediate found, its root missing", otherLeaf.Cert, cs(root), cs(otherSub), false, 0, ReasonIssuerNotFound, nil},
		{"nothing trusted", leaf.Cert, nil, cs(sub), false, 0, ReasonIssuerNotFound, nil},
		{"caller's own root is dropped", rogueLeaf.Cert, cs(root), cs(rogue), false, 0, ReasonIssuerNotFound, nil},
		{"expired leaf", expiredLeaf.Cert, cs(root), cs(sub), false, 0, ReasonExpired, nil},
		// Nothing to trust it with comes before its dates (as the reference: empty trusted set).
		{"expired leaf, nothing trusted", expiredLeaf.Cert, nil, nil, false, 0, ReasonIssuerNotFound, nil},
		{"future leaf, nothing trusted", futureLeaf.Cert, nil, nil, false, 0, ReasonIssuerNotFound, nil},
		{"future leaf", futureLeaf.Cert, cs(root), cs(sub), false, 0, ReasonExpired, nil},
		{"future leaf allowed", futureLeaf.Cert, cs(root), cs(sub), true, 0, ReasonValid, []*testpki.Issued{futureLeaf, sub, root}},
		// VerifyOptions.AllowFutureLeaf: the CAs must be valid when the leaf starts.
		{"future leaf starts after its issuer expires", futureLeafOfShortSub.Cert, cs(root), cs(shortSub), true, 0, ReasonExpired, nil},
		{"future leaf under a future sub-CA", futureLeafOfFutureSub.Cert, cs(root), cs(futureSub), true, 0, ReasonValid, []*testpki.Issued{futureLeafOfFutureSub, futureSub, root}},
		{"future leaf starting before its issuer", earlyLeaf.Cert, cs(root), cs(futureSub), true, 0, ReasonExpired, nil},
		{"expired sub-CA", leafOfExpiredSub.Cert, cs(root), cs(expiredSub), false, 0, ReasonExpired, nil},
		{"expired root", leafOfExpiredRoot.Cert, cs(expiredRoot), cs(subOfExpiredRoot), false, 0, ReasonExpired, nil},
		{"trusted sub-CA of a trusted expired root", leafOfExpiredRoot.Cert, cs(expiredRoot, subOfExpiredRoot), nil, false, 0, ReasonExpired, nil},
		{"untrusted self-signed", selfLeaf.Cert, cs(root), nil, false, 0, ReasonUnknown, nil},
		{"tampered leaf", tampered(t, leaf.Cert), cs(root, sub), nil, false, 0, ReasonInvalidSignature, nil},
		{"tampered intermediate", leaf.Cert, cs(root), []*x509.Certificate{tampered(t, sub.Cert)}, false, 0, ReasonInvalidSignature, nil},
		{"issuer is not a CA", leafOfLeaf, cs(root, sub), cs(leaf), false, 0, ReasonUnknown, nil},
		{"issuer may not sign certificates", leafOfNoCertSign.Cert, cs(root), cs(noCertSign), false, 0, ReasonUnknown, nil},
		{"path length exceeded", leafOfPl0.Cert, cs(root), cs(pl0, subOfPl0), false, 0, ReasonUnknown, nil},
		{"unhandled critical extension", critical, cs(root, sub), nil, false, 0, ReasonUnknown, nil},
		{"chain longer than MaxDepth", leaf.Cert, cs(root), cs(sub), false, 2, ReasonInvalidChain, nil},
		{"chain as long as MaxDepth", leaf.Cert, cs(root), cs(sub), false, 3, ReasonValid, []*testpki.Issued{leaf, sub, root}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := VerifyOptions{Intermediates: tc.inter, Time: now, AllowFutureLeaf: tc.allowFuture, MaxDepth: tc.maxDepth}
			if tc.trusted != nil {
				opts.Trusted = NewPool(tc.trusted...)
			}
			chain, err := Verify(tc.leaf, opts)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %s (%v), want %s", got, err, tc.want)
			}
			if tc.want == ReasonValid {
				if !ptSame(chain, tc.chain...) {
					t.Errorf("chain %v", ptNames(chain))
				}
				return
			}
			var ve *VerifyError
			if chain != nil || !errors.As(err, &ve) || ve.Reason != tc.want || !strings.HasPrefix(err.Error(), string(tc.want)+": ") {
				t.Errorf("error %#v, chain %v", err, chain)
			}
		})
	}
	if ReasonOf(nil) != ReasonValid || ReasonOf(errors.New("x")) != ReasonUnknown {
		t.Error("ReasonOf")
	}
}

// Cross-signed roots: whichever root is trusted, a path through the cross certificate or the
// new root is found, and an expired path is passed over for a good one.
func TestVerifyCrossSigned(t *testing.T) {
	now := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)
	valid := func(s *testpki.Spec) { s.NotBefore, s.NotAfter = now.AddDate(-1, 0, 0), now.AddDate(3, 0, 0) }
	oldRoot := ptCA(t, nil, "Old Root", valid)
	newRoot := ptCA(t, nil, "New Root", func(s *testpki.Spec) { s.NotBefore, s.NotAfter = now.AddDate(-2, 0, 0), now.Add(-time.Hour) }) // expired
	cross := ptCA(t, oldRoot, "New Root", func(s *testpki.Spec) { valid(s); s.Key = newRoot.Key })
	sub := ptCA(t, newRoot, "Sub", valid)
	leaf := ptLeaf(t, sub, "Leaf", valid)
	for _, tc := range []struct {
		name    string
		trusted []*x509.Certificate
		inter   []*x509.Certificate
		want    Reason
	}{
		{"old root trusted, cross offered", []*x509.Certificate{oldRoot.Cert}, []*x509.Certificate{sub.Cert, cross.Cert}, ReasonValid},
		{"both trusted, the new one expired", []*x509.Certificate{newRoot.Cert, oldRoot.Cert}, []*x509.Certificate{sub.Cert, cross.Cert}, ReasonValid},
		{"only the expired new root", []*x509.Certificate{newRoot.Cert}, []*x509.Certificate{sub.Cert, cross.Cert}, ReasonExpired},
		{"cross certificate trusted with its root", []*x509.Certificate{oldRoot.Cert, cross.Cert}, []*x509.Certificate{sub.Cert}, ReasonValid},
		{"no way to the old root", []*x509.Certificate{oldRoot.Cert}, []*x509.Certificate{sub.Cert}, ReasonIssuerNotFound},
	} {
		chain, err := Verify(leaf.Cert, VerifyOptions{Trusted: NewPool(tc.trusted...), Intermediates: tc.inter, Time: now})
		if got := ReasonOf(err); got != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, got, err, tc.want)
		} else if got == ReasonValid && FingerprintOf(chain[len(chain)-1]) != FingerprintOf(oldRoot.Cert) {
			t.Errorf("%s: chain ends at %s, want the old root", tc.name, chain[len(chain)-1].Subject.CommonName)
		}
	}
}

// A bundle full of look-alikes (one name, one key id, other keys) cannot make a verification
// run away: it ends quickly with a bad signature.
func TestVerifyManyLookAlikes(t *testing.T) {
	real := ptCA(t, nil, "Busy Root")
	leaf := ptLeaf(t, real, "Leaf")
	var trusted []*x509.Certificate
	key := ptKey(t)
	for i := 0; i < 300; i++ {
		trusted = append(trusted, ptRaw(t, &x509.Certificate{Subject: real.Cert.Subject, RawSubject: real.Cert.RawSubject,
			SubjectKeyId: real.Cert.SubjectKeyId, BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil, key.Public(), key))
	}
	start := time.Now()
	_, err := Verify(leaf.Cert, VerifyOptions{Trusted: NewPool(trusted...), Intermediates: trusted})
	if ReasonOf(err) != ReasonInvalidSignature {
		t.Errorf("reason %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if _, err := Verify(leaf.Cert, VerifyOptions{Trusted: NewPool(append(trusted, real.Cert)...)}); err != nil {
		t.Errorf("with the real root among the look-alikes: %v", err)
	}
}
