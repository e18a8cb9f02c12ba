package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/testpki"
)

// ptCA makes a CA certificate (self-signed when parent is nil).
func ptCA(t testing.TB, parent *testpki.Issued, cn string, mod ...func(*testpki.Spec)) *testpki.Issued {
	t.Helper()
	spec := testpki.Spec{CommonName: cn, Organization: "EVerest", Country: "DE", IsCA: true, MaxPathLen: -1}
	for _, m := range mod {
		m(&spec)
	}
	return mustIssue(t, parent, spec)
}

// mustIssue makes the certificate of spec, issued by ca (self-signed when ca is nil).
func mustIssue(t testing.TB, ca *testpki.Issued, spec testpki.Spec) *testpki.Issued {
	t.Helper()
	var c *testpki.Issued
	var err error
	if ca == nil {
		c, err = testpki.SelfSigned(spec)
	} else {
		c, err = ca.Issue(spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ptLeaf makes a leaf certificate issued by ca.
func ptLeaf(t testing.TB, ca *testpki.Issued, cn string, mod ...func(*testpki.Spec)) *testpki.Issued {
	t.Helper()
	spec := testpki.Spec{CommonName: cn, Organization: "EVerest", Country: "DE"}
	for _, m := range mod {
		m(&spec)
	}
	return mustIssue(t, ca, spec)
}

// ptRaw signs tmpl with parentKey, issuer parent (tmpl itself when parent is nil), for shapes
// testpki refuses to make (a leaf issuing certificates, no key identifiers, odd extensions).
func ptRaw(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ptHash(t testing.TB, c, issuer *x509.Certificate) HashData {
	t.Helper()
	h, err := ComputeHashData(c, issuer, SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ptNames(cs []*x509.Certificate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Subject.CommonName
	}
	return out
}

func ptSame(a []*x509.Certificate, b ...*testpki.Issued) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if FingerprintOf(a[i]) != FingerprintOf(b[i].Cert) {
			return false
		}
	}
	return true
}

// T09/T10: hash data needs the certificate's real issuer. Without it there is none (T09); the
// grandparent is not an issuer (T10: the signature decides, not a name); with the parent present
// it is computed against the parent, and a root's against itself.
func TestPoolHashDataNeedsRealIssuer(t *testing.T) {
	root3 := ptCA(t, nil, "InstallTestCA")
	sub1 := ptCA(t, root3, "InstallTestSubCA1")
	sub2 := ptCA(t, sub1, "InstallTestSubCA2")

	if _, ok := NewPool(sub2.Cert).HashData(sub2.Cert, SHA256); ok {
		t.Error("T09: hash data of a sub-CA without any issuer")
	}
	p := NewPool(root3.Cert, sub2.Cert)
	if _, ok := p.HashData(sub2.Cert, SHA256); ok {
		t.Error("T10: hash data against the grandparent")
	}
	if is := p.Issuers(sub2.Cert); len(is) != 0 {
		t.Errorf("T10: the grandparent is listed as issuer: %v", ptNames(is))
	}
	// Even a certificate with the parent's name and key identifier is no issuer without the key.
	fake := ptRaw(t, &x509.Certificate{Subject: sub1.Cert.Subject, RawSubject: sub1.Cert.RawSubject, SubjectKeyId: sub1.Cert.SubjectKeyId,
		BasicConstraintsValid: true, IsCA: true}, root3.Cert, ptKey(t).Public(), root3.Key)
	if _, ok := NewPool(root3.Cert, fake, sub2.Cert).HashData(sub2.Cert, SHA256); ok {
		t.Error("hash data against a look-alike of the parent")
	}

	full := NewPool(sub2.Cert, sub1.Cert, root3.Cert)
	for _, tc := range []struct{ c, issuer *testpki.Issued }{{sub2, sub1}, {sub1, root3}, {root3, root3}} {
		got, ok := full.HashData(tc.c.Cert, SHA256)
		if want := ptHash(t, tc.c.Cert, tc.issuer.Cert); !ok || got != want {
			t.Errorf("%s: %+v (ok %v), want %+v", tc.c.Cert.Subject.CommonName, got, ok, want)
		}
	}
	if h, ok := full.HashData(sub2.Cert, SHA512); !ok || h.Algorithm != SHA512 || len(h.IssuerKeyHash) != 128 {
		t.Errorf("SHA-512 hash data %+v", h)
	}
}

// The hierarchy: issuers by name, key id and signature; children in insertion order;
// descendants depth first; self-signed only with a good signature.
func TestPoolHierarchy(t *testing.T) {
	root := ptCA(t, nil, "Root")
	sub1 := ptCA(t, root, "Sub1")
	sub2 := ptCA(t, sub1, "Sub2")
	sib := ptCA(t, root, "Sibling")
	leaf := ptLeaf(t, sub2, "Leaf")
	other := ptCA(t, nil, "Root") // same DN, other key
	p := NewPool(leaf.Cert, sib.Cert, sub2.Cert, other.Cert, sub1.Cert, root.Cert, sub1.Cert)

	if p.Len() != 6 {
		t.Errorf("Len %d, want 6 (duplicates kept once)", p.Len())
	}
	if !ptSame(p.Issuers(sub1.Cert), root) || p.Issuer(sub1.Cert) != root.Cert {
		t.Errorf("issuers of Sub1: %v", ptNames(p.Issuers(sub1.Cert)))
	}
	if p.Issuer(root.Cert) != nil || len(p.Issuers(other.Cert)) != 0 {
		t.Error("a root has an issuer")
	}
	if !ptSame(p.Children(root.Cert), sib, sub1) {
		t.Errorf("children of Root %v, want [Sibling Sub1] (insertion order)", ptNames(p.Children(root.Cert)))
	}
	if len(p.Children(other.Cert)) != 0 {
		t.Errorf("the same-DN root has children %v", ptNames(p.Children(other.Cert)))
	}
	if !ptSame(p.Descendants(root.Cert), sib, sub1, sub2, leaf) {
		t.Errorf("descendants %v, want pre-order [Sibling Sub1 Sub2 Leaf]", ptNames(p.Descendants(root.Cert)))
	}
	if !p.IsSelfSigned(root.Cert) || p.IsSelfSigned(sub1.Cert) || !IsSelfSigned(other.Cert) {
		t.Error("IsSelfSigned")
	}
	// A self-issued certificate whose signature does not verify is not self-signed.
	bad := tampered(t, root.Cert)
	if IsSelfSigned(bad) || NewPool(bad).IsSelfSigned(bad) {
		t.Error("tampered root counts as self-signed")
	}
	if !p.Contains(sub2.Cert) || p.Contains(bad) {
		t.Error("Contains")
	}
	// A child not in the pool still finds its issuer; a parent not in the pool its children.
	if p.Issuer(ptLeaf(t, sib, "Outside").Cert) != sib.Cert {
		t.Error("issuer of a certificate outside the pool")
	}
	if !ptSame(NewPool(sub1.Cert, sib.Cert).Children(root.Cert), sub1, sib) {
		t.Error("children of a certificate outside the pool")
	}
}

// Two roots with one DN and even one subject key identifier (a look-alike): the signature
// decides which one issued.
func TestPoolSameNameAndKeyID(t *testing.T) {
	k1, k2, kl := ptKey(t), ptKey(t), ptKey(t)
	name := pkix.Name{CommonName: "Look-alike Root"}
	r2 := ptRaw(t, &x509.Certificate{Subject: name, BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil, k2.Public(), k2)
	r1 := ptRaw(t, &x509.Certificate{Subject: name, BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
		SubjectKeyId: r2.SubjectKeyId}, nil, k1.Public(), k1)
	leaf := ptRaw(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Leaf"}}, r2, kl.Public(), k2)
	if string(r1.SubjectKeyId) != string(leaf.AuthorityKeyId) {
		t.Fatal("the look-alike must carry the leaf's authority key id")
	}
	for _, order := range [][]*x509.Certificate{{r1, r2}, {r2, r1}} {
		p := NewPool(order...)
		if is := p.Issuers(leaf); len(is) != 1 || is[0] != r2 {
			t.Errorf("issuers %v", ptNames(is))
		}
		if h, ok := p.HashData(leaf, SHA256); !ok || h != ptHash(t, leaf, r2) {
			t.Error("hash data not against the signer")
		}
		if len(p.Children(r1)) != 0 {
			t.Error("the look-alike has children")
		}
	}
}

// Issuer names are compared as OpenSSL does (X509_NAME_cmp on the canonical form): case, spacing
// and string type do not matter.
func TestPoolLinksCanonicalNames(t *testing.T) {
	root := ptCA(t, nil, "Station  Root")
	alt, err := asn1.Marshal(pkix.Name{Country: []string{"de"}, Organization: []string{"everest"}, CommonName: "station root"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	parent := *root.Cert
	parent.RawSubject = alt // the child names its issuer in another encoding
	child := ptRaw(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Child"}, BasicConstraintsValid: true, IsCA: true}, &parent, ptKey(t).Public(), root.Key)
	if string(child.RawIssuer) == string(root.Cert.RawSubject) {
		t.Fatal("the test needs differently encoded names")
	}
	p := NewPool(root.Cert, child)
	if p.Issuer(child) != root.Cert || len(p.Children(root.Cert)) != 1 {
		t.Error("names equal under OpenSSL's comparison do not link")
	}
}

// Cross-signing: a CA certificate for the new root's key issued by the old root. The sub-CA of
// the new root has two issuers (the new root and the cross certificate, same name and key), and
// both list it as child.
func TestPoolCrossSigned(t *testing.T) {
	oldRoot := ptCA(t, nil, "Old Root")
	newRoot := ptCA(t, nil, "New Root")
	cross := ptCA(t, oldRoot, "New Root", func(s *testpki.Spec) { s.Key = newRoot.Key })
	sub := ptCA(t, newRoot, "Sub")
	p := NewPool(oldRoot.Cert, newRoot.Cert, cross.Cert, sub.Cert)
	if !ptSame(p.Issuers(sub.Cert), newRoot, cross) {
		t.Errorf("issuers of the sub-CA %v", ptNames(p.Issuers(sub.Cert)))
	}
	if !ptSame(p.Issuers(cross.Cert), oldRoot) {
		t.Errorf("issuers of the cross certificate %v", ptNames(p.Issuers(cross.Cert)))
	}
	if !ptSame(p.Descendants(oldRoot.Cert), cross, sub) {
		t.Errorf("descendants of the old root %v", ptNames(p.Descendants(oldRoot.Cert)))
	}
	h1, _ := ComputeHashData(sub.Cert, newRoot.Cert, SHA256)
	h2, _ := ComputeHashData(sub.Cert, cross.Cert, SHA256)
	if got, _ := p.HashData(sub.Cert, SHA256); h1 != h2 || got != h1 {
		t.Error("hash data depends on which of two same-name, same-key issuers is used")
	}
}

// A root re-issued with the same name and key is self-signed: it has no issuer and is nobody's
// child, although each twin's key verifies the other's signature.
func TestPoolReissuedRoot(t *testing.T) {
	r1 := ptCA(t, nil, "Stable Root")
	r2 := ptCA(t, nil, "Stable Root", func(s *testpki.Spec) { s.Key = r1.Key; s.NotAfter = time.Now().AddDate(20, 0, 0) })
	sub := ptCA(t, r1, "Sub")
	p := NewPool(r1.Cert, r2.Cert, sub.Cert)
	for _, r := range []*testpki.Issued{r1, r2} {
		if is := p.Issuers(r.Cert); len(is) != 0 {
			t.Errorf("issuers of a self-signed root: %v", ptNames(is))
		}
		if !ptSame(p.Children(r.Cert), sub) || !ptSame(p.Descendants(r.Cert), sub) {
			t.Errorf("children %v, want only the sub-CA", ptNames(p.Children(r.Cert)))
		}
	}
	if !ptSame(p.Issuers(sub.Cert), r1, r2) {
		t.Errorf("issuers of the sub-CA %v, want both twins", ptNames(p.Issuers(sub.Cert)))
	}
}

// One pool is used by many goroutines (the store shares pools between calls).
func TestPoolConcurrentUse(t *testing.T) {
	root := ptCA(t, nil, "Root")
	subs := make([]*x509.Certificate, 8)
	all := []*x509.Certificate{root.Cert}
	for i := range subs {
		subs[i] = ptCA(t, root, "Sub").Cert
		all = append(all, subs[i])
	}
	p := NewPool(all...)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range subs {
				if p.Issuer(s) != root.Cert || p.IsSelfSigned(s) {
					t.Error("wrong answer under concurrency")
				}
				p.HashData(s, SHA256)
			}
			if len(p.Descendants(root.Cert)) != len(subs) {
				t.Error("descendants under concurrency")
			}
		}()
	}
	wg.Wait()
}
