package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// T02 (verify_directory_bundles): the leaf verifies against the bundle file, the sub-CAs in the
// bundle completing its chain; and against a directory that holds the bundle plus two roots with
// the same DN, where the chain must be built to the root whose key signed.
func TestReferenceVerifyDirectoryBundles(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	leaf := string(p.SECCLeaf.CertPEM())
	if got := ts.VerifyCertificate(leaf, []LeafType{LeafCSMS}); got != ValidationValid {
		t.Fatalf("leaf against the bundle file = %s", got)
	}

	ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", p.V2GRoot.CertPEM())
	ts.write(t, "ca/v2g/V2G_ROOT_CA_NEW.pem", p.V2GRootNew.CertPEM())
	dir := openCAStore(t, ts.root, withConfig(func(c *Config) { c.V2GCABundle, c.CSMSCABundle = "ca/v2g", "ca/v2g" }))
	for _, lt := range []LeafType{LeafCSMS, LeafV2G} {
		if got := dir.VerifyCertificate(leaf, []LeafType{lt}); got != ValidationValid {
			t.Errorf("leaf against the directory as %s = %s", lt, got)
		}
	}

	// Only the two same-DN roots are trusted; the sub-CAs come with the chain. Whichever root
	// sorts first, the one that signed is found.
	for _, names := range [][2]string{{"A_OLD.pem", "B_NEW.pem"}, {"B_OLD.pem", "A_NEW.pem"}} {
		roots := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "roots" }))
		roots.write(t, "roots/"+names[0], p.V2GRoot.CertPEM())
		roots.write(t, "roots/"+names[1], p.V2GRootNew.CertPEM())
		if got := roots.VerifyCertificate(string(p.SECCLeaf.ChainPEM()), []LeafType{LeafV2G}); got != ValidationValid {
			t.Errorf("%v: chain against two same-DN roots = %s", names, got)
		}
	}
}

// TestVerifyCertificateResults is verify_certificate's result table on Go-made chains with a
// fixed clock. Rows marked "adapted" answer differently from the reference on purpose.
func TestVerifyCertificateResults(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	span := func(spec testpki.Spec, from, to time.Time) testpki.Spec {
		spec.NotBefore, spec.NotAfter = from, to
		return spec
	}
	long := [2]time.Time{now.AddDate(-1, 0, 0), now.AddDate(5, 0, 0)}
	root := mustRoot(t, span(caSpec("Root"), long[0], long[1]))
	sub := mustIssue(t, root, span(caSpec("Sub"), long[0], long[1]))
	leaf := mustIssue(t, sub, span(leafSpec("Leaf"), long[0], now.AddDate(1, 0, 0)))
	expiredLeaf := mustIssue(t, sub, span(leafSpec("Old"), long[0], now.Add(-time.Minute)))
	futureLeaf := mustIssue(t, sub, span(leafSpec("Soon"), now.Add(time.Hour), long[1]))
	expiredRoot := mustRoot(t, span(caSpec("ExpiredRoot"), long[0], now.Add(-time.Hour)))
	subOfExpired := mustIssue(t, expiredRoot, span(caSpec("SubOfExpired"), long[0], long[1]))
	leafOfExpired := mustIssue(t, subOfExpired, span(leafSpec("L1"), long[0], long[1]))
	expiredSub := mustIssue(t, root, span(caSpec("ExpiredSub"), long[0], now.Add(-time.Hour)))
	leafOfExpiredSub := mustIssue(t, expiredSub, span(leafSpec("L2"), long[0], long[1]))
	futureSub := mustIssue(t, root, span(caSpec("FutureSub"), now.Add(time.Hour), long[1]))
	leafOfFutureSub := mustIssue(t, futureSub, span(leafSpec("L3"), long[0], long[1]))
	// T14's INVALID_CSMS: self-signed, the root's DN and serial, another key.
	impostorSpec := span(caSpec("Root"), long[0], long[1])
	impostorSpec.Serial = root.Cert.SerialNumber
	impostor := mustRoot(t, impostorSpec)
	otherRoot := mustRoot(t, span(caSpec("OtherRoot"), long[0], long[1]))
	otherSub := mustIssue(t, otherRoot, span(caSpec("OtherSub"), long[0], long[1]))
	otherLeaf := mustIssue(t, otherSub, span(leafSpec("OtherLeaf"), long[0], long[1]))
	badLeaf := tampered(t, leaf.Cert)

	chain := func(cs ...*testpki.Issued) string { return string(testpki.CertsPEM(cs...)) }
	tests := []struct {
		name   string
		bundle []*testpki.Issued // V2G bundle
		mo     []*testpki.Issued // MO bundle
		input  string
		types  []LeafType
		want   ValidationResult
	}{
		{"chain with intermediate", []*testpki.Issued{root}, nil, chain(leaf, sub), nil, ValidationValid},
		{"chain with its root appended (dropped, not trusted)", []*testpki.Issued{root}, nil, chain(leaf, sub, root), nil, ValidationValid},
		{"leaf alone, intermediate trusted too", []*testpki.Issued{root, sub}, nil, chain(leaf), nil, ValidationValid},
		{"leaf alone, only the root trusted", []*testpki.Issued{root}, nil, chain(leaf), nil, ValidationIssuerNotFound},
		// adapted: the reference needed a self-signed anchor (IssuerNotFound); DESIGN.md row 9
		// supports partial chains.
		{"only the intermediate trusted (partial chain)", []*testpki.Issued{sub}, nil, chain(leaf), nil, ValidationValid},
		{"root against itself", []*testpki.Issued{root}, nil, chain(root), nil, ValidationValid},
		{"expired leaf", []*testpki.Issued{root}, nil, chain(expiredLeaf, sub), nil, ValidationExpired},
		// adapted (DESIGN.md row 9): the reference ignored time except the leaf's notAfter.
		{"not yet valid leaf", []*testpki.Issued{root}, nil, chain(futureLeaf, sub), nil, ValidationExpired},
		{"expired root", []*testpki.Issued{expiredRoot}, nil, chain(leafOfExpired, subOfExpired), nil, ValidationExpired},
		{"expired root, sub-CA trusted too", []*testpki.Issued{expiredRoot, subOfExpired}, nil, chain(leafOfExpired), nil, ValidationExpired},
		{"expired sub-CA", []*testpki.Issued{root}, nil, chain(leafOfExpiredSub, expiredSub), nil, ValidationExpired},
		{"not yet valid sub-CA", []*testpki.Issued{root}, nil, chain(leafOfFutureSub, futureSub), nil, ValidationExpired},
		{"T14 untrusted self-signed with the root's DN and serial", []*testpki.Issued{root}, nil, chain(impostor), nil, ValidationUnknown},
		{"leaf of another PKI", []*testpki.Issued{root}, nil, chain(otherLeaf, otherSub), nil, ValidationIssuerNotFound},
		{"tampered leaf signature", []*testpki.Issued{root, sub}, nil, string(certs.EncodePEM(badLeaf)), nil, ValidationInvalidSignature},
		// T41: the MO bundle lacks the chain's root; the intermediates are found but not the root.
		{"T41 missing trust anchor", []*testpki.Issued{otherRoot}, []*testpki.Issued{root}, chain(otherLeaf, otherSub), []LeafType{LeafMO}, ValidationIssuerNotFound},
		// T40: several leaf types, one domain holds the root.
		{"T40 several leaf types", []*testpki.Issued{root}, []*testpki.Issued{otherRoot}, chain(leaf, sub), []LeafType{LeafMO, LeafV2G}, ValidationValid},
		{"empty domain", nil, nil, chain(leaf, sub), nil, ValidationIssuerNotFound},
		{"T42 garbage", []*testpki.Issued{root}, nil, "InvalidCertificate", nil, ValidationUnknown},
		{"empty chain", []*testpki.Issued{root}, nil, "", nil, ValidationUnknown},
		{"broken PEM block", []*testpki.Issued{root}, nil, chain(leaf) + "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n", nil, ValidationUnknown},
		{"no leaf types", []*testpki.Issued{root}, nil, chain(leaf, sub), []LeafType{}, ValidationIssuerNotFound},
		// No domain is looked at before the input, as in the reference: nothing to verify
		// against, whatever the chain is.
		{"no leaf types, garbage", []*testpki.Issued{root}, nil, "InvalidCertificate", []LeafType{}, ValidationIssuerNotFound},
		{"no leaf types, empty chain", []*testpki.Issued{root}, nil, "", []LeafType{}, ValidationIssuerNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newCAStore(t, withClock(now))
			if tc.bundle != nil {
				ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", testpki.CertsPEM(tc.bundle...))
			}
			if tc.mo != nil {
				ts.write(t, "ca/mo/MO_ROOT_CA.pem", testpki.CertsPEM(tc.mo...))
			}
			types := tc.types
			if types == nil {
				types = []LeafType{LeafV2G}
			}
			before := snapshotTree(t, ts.root)
			if got := ts.VerifyCertificate(tc.input, types); got != tc.want {
				t.Errorf("verify_certificate = %s, want %s", got, tc.want)
			}
			assertTreeUnchanged(t, ts.root, before)
		})
	}
}

// TestVerifyAgreesWithOpenSSL builds chains with the openssl CLI (req, x509 -req, and `openssl
// ca -startdate -enddate` for validity periods in the past and the future) and checks that
// verify_certificate answers what `openssl verify -CAfile BUNDLE -untrusted SUBS LEAF` answers,
// with OpenSSL's error code mapped as the reference maps it.
func TestVerifyAgreesWithOpenSSL(t *testing.T) {
	o := newOSSLPKI(t)
	past := osslOpts{CA: true, Start: "20200101000000Z", End: "20210101000000Z"}
	pastLeaf := osslOpts{Start: "20200101000000Z", End: "20210101000000Z"}
	future := osslOpts{CA: true, Start: "20990101000000Z", End: "20991231000000Z"}
	ca := osslOpts{CA: true, Days: 3650}
	leafO := osslOpts{Days: 365}

	rootA := o.root("rootA", "/CN=Root A/O=EVerest/C=DE", ca)
	subA := o.issue(rootA, "subA", "/CN=Sub A/O=EVerest/C=DE", ca)
	leafA := o.issue(subA, "leafA", "/CN=Leaf A/O=EVerest/C=DE", leafO)
	expLeafA := o.issue(subA, "expLeafA", "/CN=Old Leaf A", pastLeaf)

	rootExp := o.root("rootExp", "/CN=Expired Root/O=EVerest", past)
	subUnderExp := o.issue(rootExp, "subUnderExp", "/CN=Sub Under Expired", ca)
	leafUnderExp := o.issue(subUnderExp, "leafUnderExp", "/CN=Leaf Under Expired", leafO)

	subExp := o.issue(rootA, "subExp", "/CN=Expired Sub/O=EVerest", past)
	leafUnderSubExp := o.issue(subExp, "leafUnderSubExp", "/CN=Leaf Under Expired Sub", leafO)
	subFuture := o.issue(rootA, "subFuture", "/CN=Future Sub/O=EVerest", future)
	leafUnderSubFuture := o.issue(subFuture, "leafUnderSubFuture", "/CN=Leaf Under Future Sub", leafO)

	rootB := o.root("rootB", "/CN=Root B/O=Other", ca)
	subB := o.issue(rootB, "subB", "/CN=Sub B/O=Other", ca)
	leafB := o.issue(subB, "leafB", "/CN=Leaf B/O=Other", leafO)
	// Another PKI whose root has Root A's DN.
	rootA2 := o.root("rootA2", "/CN=Root A/O=EVerest/C=DE", ca)
	leafA2 := o.issue(rootA2, "leafA2", "/CN=Leaf A2", leafO)

	// Two roots with one DN and no key identifiers anywhere: only the signature tells them apart.
	nk := osslOpts{CA: true, Days: 3650, NoKeyID: true}
	rootN1 := o.root("rootN1", "/CN=NoKid Root/O=EVerest", nk)
	rootN2 := o.root("rootN2", "/CN=NoKid Root/O=EVerest", nk)
	leafN2 := o.issue(rootN2, "leafN2", "/CN=NoKid Leaf", osslOpts{Days: 365, NoKeyID: true})

	// Root rollover by cross-signing: the new root's key certified by the old root.
	oldRoot := o.root("oldRoot", "/CN=Old Root/O=EVerest", ca)
	newRoot := o.root("newRoot", "/CN=New Root/O=EVerest", ca)
	cross := o.issue(oldRoot, "cross", "/CN=New Root/O=EVerest", osslOpts{CA: true, Days: 3650, Key: newRoot})
	subN := o.issue(newRoot, "subN", "/CN=Sub Under New Root", ca)
	leafN := o.issue(subN, "leafN", "/CN=Leaf Under New Root", leafO)
	expiredOldRoot := o.root("expiredOldRoot", "/CN=Expired Old Root/O=EVerest", past)
	expiredCross := o.issue(expiredOldRoot, "expiredCross", "/CN=New Root/O=EVerest", osslOpts{CA: true, Days: 3650, Key: newRoot})

	selfLeaf := o.root("selfLeaf", "/CN=Self Signed Leaf", leafO)
	selfRoot := o.root("selfRoot", "/CN=Untrusted Root", ca)

	leafAsCA := o.issue(rootA, "leafAsCA", "/CN=Leaf Acting As CA", leafO)
	leafOfLeaf := o.issue(leafAsCA, "leafOfLeaf", "/CN=Leaf Of Leaf", leafO)
	pl0 := o.issue(rootA, "pl0", "/CN=PathLen0 Sub", osslOpts{CA: true, Days: 3650, PathLen0: true})
	subOfPl0 := o.issue(pl0, "subOfPl0", "/CN=Sub Of PathLen0", ca)
	leafOfPl0 := o.issue(subOfPl0, "leafOfPl0", "/CN=Too Deep", leafO)

	badLeaf := &osslCert{Name: "badLeaf", PEM: string(certs.EncodePEM(tampered(t, leafA.Cert)))}
	badLeaf.CertPath = filepath.Join(o.dir, "badLeaf.pem")
	if err := os.WriteFile(badLeaf.CertPath, []byte(badLeaf.PEM), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		trusted   []*osslCert
		untrusted []*osslCert
		leaf      *osslCert
		want      ValidationResult // what both must say
		// openssl, when set, is OpenSSL's different answer where evsesec does better on purpose.
		openssl ValidationResult
	}{
		{"valid chain", []*osslCert{rootA}, []*osslCert{subA}, leafA, ValidationValid, ""},
		{"valid, sub-CA in the bundle", []*osslCert{rootA, subA}, nil, leafA, ValidationValid, ""},
		{"expired leaf", []*osslCert{rootA}, []*osslCert{subA}, expLeafA, ValidationExpired, ""},
		{"expired root", []*osslCert{rootExp}, []*osslCert{subUnderExp}, leafUnderExp, ValidationExpired, ""},
		{"expired sub-CA", []*osslCert{rootA}, []*osslCert{subExp}, leafUnderSubExp, ValidationExpired, ""},
		{"expired sub-CA in the bundle", []*osslCert{rootA, subExp}, nil, leafUnderSubExp, ValidationExpired, ""},
		{"not yet valid sub-CA", []*osslCert{rootA}, []*osslCert{subFuture}, leafUnderSubFuture, ValidationExpired, ""},
		{"wrong issuer: leaf of another PKI", []*osslCert{rootA}, []*osslCert{subB}, leafB, ValidationIssuerNotFound, ""},
		{"wrong issuer: root with the same DN, other key", []*osslCert{rootA}, nil, leafA2, ValidationIssuerNotFound, ""},
		// OpenSSL takes the first trusted certificate with the issuer's name and reports its bad
		// signature; evsesec tries every candidate, as T02 requires of a directory holding two
		// roots with one DN.
		{"same-DN roots without key ids, signer second", []*osslCert{rootN1, rootN2}, nil, leafN2, ValidationValid, ValidationInvalidSignature},
		{"same-DN roots without key ids, signer first", []*osslCert{rootN2, rootN1}, nil, leafN2, ValidationValid, ""},
		{"same DN, no key ids, signer not trusted", []*osslCert{rootN1}, nil, leafN2, ValidationInvalidSignature, ""},
		{"cross-signed: old root trusted only", []*osslCert{oldRoot}, []*osslCert{subN, cross}, leafN, ValidationValid, ""},
		{"cross-signed: new root trusted only", []*osslCert{newRoot}, []*osslCert{subN, cross}, leafN, ValidationValid, ""},
		{"cross-signed: both trusted", []*osslCert{oldRoot, newRoot}, []*osslCert{subN, cross}, leafN, ValidationValid, ""},
		{"cross-signed: old root trusted, cross certificate missing", []*osslCert{oldRoot}, []*osslCert{subN}, leafN, ValidationIssuerNotFound, ""},
		{"cross-signed: cross certificate trusted", []*osslCert{oldRoot, cross}, []*osslCert{subN}, leafN, ValidationValid, ""},
		{"cross-signed through an expired old root", []*osslCert{expiredOldRoot}, []*osslCert{subN, expiredCross}, leafN, ValidationExpired, ""},
		{"untrusted self-signed leaf", []*osslCert{rootA}, nil, selfLeaf, ValidationUnknown, ""},
		{"untrusted self-signed root", []*osslCert{rootA}, nil, selfRoot, ValidationUnknown, ""},
		{"issuer is not a CA", []*osslCert{rootA}, []*osslCert{leafAsCA}, leafOfLeaf, ValidationUnknown, ""},
		{"path length exceeded", []*osslCert{rootA}, []*osslCert{pl0, subOfPl0}, leafOfPl0, ValidationUnknown, ""},
		{"tampered leaf signature", []*osslCert{rootA, subA}, nil, badLeaf, ValidationInvalidSignature, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-CAfile", o.bundle(t, fmt.Sprintf("trusted%d.pem", i), tc.trusted...)}
			if len(tc.untrusted) > 0 {
				args = append(args, "-untrusted", o.bundle(t, fmt.Sprintf("untrusted%d.pem", i), tc.untrusted...))
			}
			code, out := opensslVerify(t, o.dir, append(args, tc.leaf.CertPath)...)
			wantOpenSSL := tc.want
			if tc.openssl != "" {
				wantOpenSSL = tc.openssl
			}
			if got := validationOfOpenSSL(code); got != wantOpenSSL {
				t.Fatalf("openssl verify: code %d (%s), the test expects %s:\n%s", code, got, wantOpenSSL, out)
			}
			ts := newCAStore(t)
			ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", []byte(pemOf(tc.trusted...)))
			got := ts.VerifyCertificate(tc.leaf.PEM+pemOf(tc.untrusted...), []LeafType{LeafV2G})
			if got != tc.want {
				t.Errorf("verify_certificate = %s, want %s; openssl says %d (%s)", got, tc.want, code, strings.TrimSpace(out))
			}
		})
	}
}
