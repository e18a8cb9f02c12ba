package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

// The -20 chain is P-521 throughout, signed with SHA-512, its leaf DC=CSO with digitalSignature
// alone; every per-EVSE leaf carries its SECC-ID as CN; OpenSSL verifies each leaf file with its
// chain file against the V2G bundle, which holds both roots.
func TestISO15118_20Layout(t *testing.T) {
	p, l := writeStandard(t, Options{ISO15118_20: true, SeccIDs: []string{"EVSE1", "EVSE2"}}, "")
	for _, c := range []*Issued{p.V2G20Root, p.CPO20SubCA1, p.CPO20SubCA2, p.SECC20Leaf, p.EVSEs[0].V2G20} {
		if k, ok := c.Cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P521() || c.Cert.SignatureAlgorithm != x509.ECDSAWithSHA512 {
			t.Errorf("%s: key %T, signature %v", c.Cert.Subject.CommonName, c.Cert.PublicKey, c.Cert.SignatureAlgorithm)
		}
	}
	if p.SECC20Leaf.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("-20 leaf key usage %v", p.SECC20Leaf.Cert.KeyUsage)
	}
	requireTool(t, "openssl")
	type pair struct{ leaf, chain, cn string }
	pairs := []pair{{l.SECCLeafCert, l.SECCChain, "SECCCert"}, {l.SECC20LeafCert, l.SECC20Chain, SECC20CommonName}}
	for _, f := range l.EVSEs {
		pairs = append(pairs, pair{f.V2GCert, f.V2GChain, f.SeccID}, pair{f.V2G20Cert, f.V2G20Chain, f.SeccID})
	}
	for _, pr := range pairs {
		mustOpenSSL(t, "verify", "-CAfile", l.V2GBundle, "-untrusted", pr.chain, pr.leaf)
		subj := mustOpenSSL(t, "x509", "-in", pr.leaf, "-noout", "-subject")
		if !strings.Contains(subj, "CN = "+pr.cn) {
			t.Errorf("%s: subject %s, want CN %s", pr.leaf, subj, pr.cn)
		}
	}
	for _, f := range l.Files() {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("listed file missing: %v", err)
		}
	}
	if _, err := Generate(Options{SeccIDs: []string{"../evil"}}); err == nil {
		t.Error("a SECC-ID that is no file name was accepted")
	}
	if _, err := Generate(Options{SeccIDs: []string{"A", "A"}}); err == nil {
		t.Error("a SECC-ID given twice was accepted")
	}
}
