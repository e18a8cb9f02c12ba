package certs

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/testpki"
)

// Each profile table accepts its own leaves and names the first rule another breaks.
func TestProfiles(t *testing.T) {
	ca := func(alg string) testpki.Spec {
		return testpki.Spec{CommonName: "CA " + alg, IsCA: true, MaxPathLen: -1, KeyAlgorithm: alg}
	}
	root256 := mustIssue(t, nil, ca(testpki.KeyP256))
	root521 := mustIssue(t, nil, ca(testpki.KeyP521))
	leaf := func(issuer *testpki.Issued, alg, dc string, ku x509.KeyUsage) *x509.Certificate {
		return mustIssue(t, issuer, testpki.Spec{CommonName: "SECC", Country: "DE", DomainComponent: dc, KeyAlgorithm: alg, KeyUsage: ku}).Cert
	}
	sig := x509.KeyUsageDigitalSignature
	cases := []struct {
		name    string
		p       Profile
		c       *x509.Certificate
		rule    ProfileRule // "" = meets the profile
		because string
	}{
		{"-2 leaf", ISO15118_2SECC, leaf(root256, testpki.KeyP256, "CPO", 0), "", ""},
		{"-2 leaf without DC", ISO15118_2SECC, leaf(root256, testpki.KeyP256, "", 0), RuleSubject, "no DC=CPO"},
		{"-2 leaf without keyAgreement", ISO15118_2SECC, leaf(root256, testpki.KeyP256, "CPO", sig), RuleKeyUsage, "keyAgreement"},
		{"-2 profile, P-521 key", ISO15118_2SECC, leaf(root521, testpki.KeyP521, "CPO", 0), RuleKey, "key is P-521"},
		{"CA as -2 leaf", ISO15118_2SECC, root256.Cert, RuleEndEntity, "CA certificate"},
		{"-20 leaf DC=CSO", ISO15118_20SECC, leaf(root521, testpki.KeyP521, "CSO", sig), "", ""},
		{"-20 leaf DC=CPO", ISO15118_20SECC, leaf(root521, testpki.KeyP521, "CPO", sig), "", ""},
		{"-20 leaf without DC", ISO15118_20SECC, leaf(root521, testpki.KeyP521, "", sig), RuleSubject, "DC=CSO or DC=CPO"},
		{"-20 leaf that signs certificates", ISO15118_20SECC, leaf(root521, testpki.KeyP521, "CSO", sig|x509.KeyUsageCertSign), RuleKeyUsage, "must not include keyCertSign"},
		{"-20 profile, P-256 key", ISO15118_20SECC, leaf(root256, testpki.KeyP256, "CSO", sig), RuleKey, "requires P-521 or Ed448"},
		{"-20 leaf signed with SHA-256", ISO15118_20SECC, leaf(root256, testpki.KeyP521, "CSO", sig), RuleSignature, "signed with ECDSA-SHA256"},
	}
	for _, c := range cases {
		err := c.p.Check(c.c)
		var pe *ProfileError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.rule != "" && (!errors.As(err, &pe) || pe.Rule != c.rule || !strings.Contains(err.Error(), c.because) || !strings.Contains(err.Error(), c.p.Name)):
			t.Errorf("%s: %v, want rule %s naming %q", c.name, err, c.rule, c.because)
		}
	}
	// The key alone tells the kinds apart.
	if ISO15118_20SECC.Fits(leaf(root256, testpki.KeyP256, "CPO", 0)) || !ISO15118_20SECC.Fits(leaf(root521, testpki.KeyP521, "CPO", 0)) {
		t.Error("Fits does not tell -2 from -20 keys")
	}
}

// A third standard is one more table: a profile value, no new code.
func TestProfileIsData(t *testing.T) {
	p := Profile{Name: "test P-384 SECC", Source: "a test", DomainComponents: []string{"XYZ"},
		KeyUsage: x509.KeyUsageDigitalSignature, Keys: []KeyAlgorithm{KeyP384}}
	root := mustIssue(t, nil, testpki.Spec{CommonName: "root", IsCA: true, MaxPathLen: -1, KeyAlgorithm: testpki.KeyP384})
	ok := mustIssue(t, root, testpki.Spec{CommonName: "x", DomainComponent: "XYZ", KeyAlgorithm: testpki.KeyP384}).Cert
	if err := p.Check(ok); err != nil {
		t.Fatal(err)
	}
	bad := mustIssue(t, root, testpki.Spec{CommonName: "x", DomainComponent: "CPO", KeyAlgorithm: testpki.KeyP384}).Cert
	if err := p.Check(bad); err == nil || !strings.Contains(err.Error(), "DC=XYZ") {
		t.Fatalf("err = %v", err)
	}
}

// Ed448: Go parses the certificate but not the key; the profile code still names both from the
// DER, so an Ed448 leaf is recognised as ISO 15118-20 and refused with the right reason.
func TestEd448Recognised(t *testing.T) {
	requireTool(t, "openssl")
	dir := t.TempDir()
	if _, err := tryOpenSSL(t, dir, "req", "-x509", "-newkey", "ed448", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
		"-subj", "/CN=ed448/DC=CSO", "-days", "1", "-addext", "keyUsage=critical,digitalSignature"); err != nil {
		t.Skipf("this OpenSSL makes no Ed448 certificates: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "c.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ParseCertificates(data)
	if err != nil || len(cs) != 1 {
		t.Fatalf("crypto/x509 should parse an Ed448 certificate: %v", err)
	}
	c := cs[0]
	if KeyAlgorithmOf(c) != KeyEd448 || SignatureName(c) != "Ed448" || c.PublicKey != nil {
		t.Fatalf("key %s, signature %s, Go key %T", KeyAlgorithmOf(c), SignatureName(c), c.PublicKey)
	}
	if !ISO15118_20SECC.Fits(c) {
		t.Error("an Ed448 leaf does not fit the -20 key table")
	}
	// Its self-signature cannot be checked: Go has no Ed448.
	if err := c.CheckSignatureFrom(c); err == nil {
		t.Error("Go verified an Ed448 signature")
	}
}
