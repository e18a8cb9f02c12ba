package testpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

// criticalExt returns whether the certificate has the extension and whether it is critical.
func criticalExt(cert *x509.Certificate, oid asn1.ObjectIdentifier) (present, critical bool) {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			return true, e.Critical
		}
	}
	return false, false
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
)

// wantSKID computes RFC 5280 method 1 from the certificate's own SubjectPublicKeyInfo.
func wantSKID(t *testing.T, cert *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:]
}

func near(got, want time.Time) bool {
	d := got.Sub(want)
	return d > -time.Minute && d < time.Minute
}

func TestSpecDefaults(t *testing.T) {
	now := time.Now()
	root, err := SelfSigned(Spec{CommonName: "Root", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	pathLenZero, err := root.Issue(Spec{CommonName: "Sub", IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pathLenZero.Issue(Spec{CommonName: "Leaf"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name           string
		got            *Issued
		issuer         *Issued
		isCA           bool
		maxPathLen     int
		maxPathLenZero bool
		keyUsage       x509.KeyUsage
		years          int
	}{
		{"root", root, nil, true, -1, false, x509.KeyUsageCertSign | x509.KeyUsageCRLSign, CAValidityYears},
		{"CA with MaxPathLen 0", pathLenZero, root, true, 0, true, x509.KeyUsageCertSign | x509.KeyUsageCRLSign, CAValidityYears},
		{"leaf", leaf, pathLenZero, false, -1, false, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, LeafValidityYears},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.got.Cert
			if c.IsCA != tt.isCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA %v BasicConstraintsValid %v, want %v true", c.IsCA, c.BasicConstraintsValid, tt.isCA)
			}
			if tt.isCA && (c.MaxPathLen != tt.maxPathLen || c.MaxPathLenZero != tt.maxPathLenZero) {
				t.Errorf("MaxPathLen %d zero %v, want %d %v", c.MaxPathLen, c.MaxPathLenZero, tt.maxPathLen, tt.maxPathLenZero)
			}
			if present, critical := criticalExt(c, oidBasicConstraints); !present || !critical {
				t.Errorf("basicConstraints present %v critical %v, want both", present, critical)
			}
			if present, critical := criticalExt(c, oidKeyUsage); !present || !critical {
				t.Errorf("keyUsage present %v critical %v, want both", present, critical)
			}
			if c.KeyUsage != tt.keyUsage {
				t.Errorf("KeyUsage %b, want %b", c.KeyUsage, tt.keyUsage)
			}
			if KeyAlgorithmOf(c.PublicKey) != KeyP256 || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("key %s signature %v, want P-256 ecdsa-with-SHA256", KeyAlgorithmOf(c.PublicKey), c.SignatureAlgorithm)
			}
			if _, ok := tt.got.Key.(*ecdsa.PrivateKey); !ok {
				t.Errorf("key is %T, want *ecdsa.PrivateKey", tt.got.Key)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 64 {
				t.Errorf("serial %v is not a positive 64-bit number", c.SerialNumber)
			}
			if !near(c.NotBefore, now.Add(-time.Hour)) {
				t.Errorf("NotBefore %v, want about an hour before %v", c.NotBefore, now)
			}
			if !near(c.NotAfter, now.AddDate(tt.years, 0, 0)) {
				t.Errorf("NotAfter %v, want about %d years after %v", c.NotAfter, tt.years, now)
			}
			if !bytes.Equal(c.SubjectKeyId, wantSKID(t, c)) {
				t.Errorf("SubjectKeyId %x, want SHA-1 of the key bits %x", c.SubjectKeyId, wantSKID(t, c))
			}
			if tt.got.Issuer != tt.issuer {
				t.Errorf("Issuer link wrong")
			}
			if tt.issuer == nil {
				if len(c.AuthorityKeyId) != 0 || !bytes.Equal(c.RawIssuer, c.RawSubject) {
					t.Errorf("self-signed: AuthorityKeyId %x, issuer %q", c.AuthorityKeyId, c.Issuer)
				}
				if err := c.CheckSignatureFrom(c); err != nil {
					t.Errorf("self-signature: %v", err)
				}
				return
			}
			if !bytes.Equal(c.AuthorityKeyId, tt.issuer.Cert.SubjectKeyId) {
				t.Errorf("AuthorityKeyId %x, want issuer's SubjectKeyId %x", c.AuthorityKeyId, tt.issuer.Cert.SubjectKeyId)
			}
			if !bytes.Equal(c.RawIssuer, tt.issuer.Cert.RawSubject) {
				t.Errorf("issuer %q, want %q", c.Issuer, tt.issuer.Cert.Subject)
			}
			if err := c.CheckSignatureFrom(tt.issuer.Cert); err != nil {
				t.Errorf("signature: %v", err)
			}
		})
	}

	// A pathlen 0 CA must not be able to certify another CA; OpenSSL is the judge.
	tooDeep, err := pathLenZero.Issue(Spec{CommonName: "TooDeep", IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	deepLeaf, err := tooDeep.Issue(Spec{CommonName: "DeepLeaf"})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := writeTemp(t, "root.pem", root.CertPEM())
	mustOpenSSL(t, "verify", "-CAfile", rootFile, "-untrusted", writeTemp(t, "chain.pem", leaf.ChainPEM()), writeTemp(t, "leaf.pem", leaf.CertPEM()))
	out, err := openssl(t, "verify", "-CAfile", rootFile, "-untrusted", writeTemp(t, "deep.pem", deepLeaf.ChainPEM()), writeTemp(t, "deepleaf.pem", deepLeaf.CertPEM()))
	if err == nil || !strings.Contains(out, "path length constraint exceeded") {
		t.Errorf("pathlen 0 violation accepted by openssl: %v\n%s", err, out)
	}
}

func TestExplicitSpecFields(t *testing.T) {
	root, err := SelfSigned(Spec{CommonName: "Root", IsCA: true, MaxPathLen: 3, Serial: big.NewInt(12345)})
	if err != nil {
		t.Fatal(err)
	}
	if root.Cert.SerialNumber.Int64() != 12345 || root.Cert.MaxPathLen != 3 {
		t.Errorf("serial %v MaxPathLen %d, want 12345 3", root.Cert.SerialNumber, root.Cert.MaxPathLen)
	}
	leaf, err := root.Issue(Spec{
		CommonName:  "Leaf",
		OCSPURLs:    []string{"http://127.0.0.1:1/ocsp"},
		IssuerURLs:  []string{"http://127.0.0.1:1/ca.cer"},
		DNSNames:    []string{"charger.example"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		MaxPathLen:  -1, // harmless on a leaf
	})
	if err != nil {
		t.Fatal(err)
	}
	c := leaf.Cert
	if c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 2 ||
		len(c.OCSPServer) != 1 || len(c.IssuingCertificateURL) != 1 || len(c.DNSNames) != 1 {
		t.Errorf("explicit fields lost: KU %b EKU %v OCSP %v caIssuers %v DNS %v",
			c.KeyUsage, c.ExtKeyUsage, c.OCSPServer, c.IssuingCertificateURL, c.DNSNames)
	}
	path := writeTemp(t, "leaf.pem", leaf.CertPEM())
	if out := mustOpenSSL(t, "x509", "-noout", "-ocsp_uri", "-in", path); strings.TrimSpace(out) != "http://127.0.0.1:1/ocsp" {
		t.Errorf("openssl -ocsp_uri = %q", out)
	}
}

func TestKeyAlgorithms(t *testing.T) {
	tests := []struct {
		alg       string
		sig       x509.SignatureAlgorithm
		blockType string
	}{
		{KeyP256, x509.ECDSAWithSHA256, "EC PRIVATE KEY"},
		{KeyP384, x509.ECDSAWithSHA384, "EC PRIVATE KEY"},
		{KeyP521, x509.ECDSAWithSHA512, "EC PRIVATE KEY"},
		{KeyRSA2048, x509.SHA256WithRSA, "RSA PRIVATE KEY"}, // the only RSA key the tests generate: it is slow
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			ca, err := SelfSigned(Spec{CommonName: "CA " + tt.alg, IsCA: true, MaxPathLen: -1, KeyAlgorithm: tt.alg})
			if err != nil {
				t.Fatal(err)
			}
			if got := KeyAlgorithmOf(ca.Cert.PublicKey); got != tt.alg {
				t.Errorf("KeyAlgorithmOf = %q", got)
			}
			if ca.Cert.SignatureAlgorithm != tt.sig {
				t.Errorf("signature %v, want %v", ca.Cert.SignatureAlgorithm, tt.sig)
			}

			plain, err := ca.KeyPEM("")
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(plain)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Fatalf("unencrypted key is not a PKCS#8 PRIVATE KEY block:\n%s", plain)
			}
			parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !parsed.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(ca.Cert.PublicKey) {
				t.Error("PKCS#8 key does not match the certificate")
			}

			const pw = "123456"
			enc, err := ca.KeyPEM(pw)
			if err != nil {
				t.Fatal(err)
			}
			block, _ = pem.Decode(enc)
			if block == nil || block.Type != tt.blockType || block.Headers["Proc-Type"] != "4,ENCRYPTED" ||
				!strings.HasPrefix(block.Headers["DEK-Info"], "AES-128-CBC,") {
				t.Fatalf("encrypted key is not legacy AES-128-CBC %s:\n%s", tt.blockType, enc)
			}

			plainFile := writeTemp(t, "plain.key", plain)
			encFile := writeTemp(t, "enc.key", enc)
			mustOpenSSL(t, "pkey", "-noout", "-in", plainFile)
			mustOpenSSL(t, "pkey", "-noout", "-in", encFile, "-passin", "pass:"+pw)
			if out, err := openssl(t, "pkey", "-noout", "-in", encFile, "-passin", "pass:wrong"); err == nil {
				t.Errorf("openssl read the encrypted key with a wrong password:\n%s", out)
			}
			// The key OpenSSL decrypts is the certificate's key.
			keyPub := mustOpenSSL(t, "pkey", "-pubout", "-in", encFile, "-passin", "pass:"+pw)
			certPub := mustOpenSSL(t, "x509", "-noout", "-pubkey", "-in", writeTemp(t, "ca.pem", ca.CertPEM()))
			if keyPub != certPub {
				t.Errorf("openssl: key file public key differs from certificate's\n%s\n%s", keyPub, certPub)
			}
		})
	}
}

// rdnSET decodes one RDN keeping each value's ASN.1 string type; encoding/asn1 treats a slice
// type whose name ends in SET as a SET OF.
type rdnSET []struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

func TestSubjectEncoding(t *testing.T) {
	type attr struct {
		oid   asn1.ObjectIdentifier
		tag   int
		value string
	}
	c := attr{oidCountry, asn1.TagPrintableString, "DE"}
	o := attr{oidOrganization, asn1.TagUTF8String, "EVerest tëst"}
	cn := attr{oidCommonName, asn1.TagUTF8String, "SECCCert"}
	dc := attr{oidDomainComponent, asn1.TagIA5String, "CPO"}
	tests := []struct {
		name string
		spec Spec
		want []attr
	}{
		{"all four in order C O CN DC", Spec{CommonName: "SECCCert", Organization: "EVerest tëst", Country: "DE", DomainComponent: "CPO"}, []attr{c, o, cn, dc}},
		{"no DC", Spec{CommonName: "SECCCert", Organization: "EVerest tëst", Country: "DE"}, []attr{c, o, cn}},
		{"CN and DC", Spec{CommonName: "SECCCert", DomainComponent: "CPO"}, []attr{cn, dc}},
		{"empty", Spec{DNSNames: []string{"localhost"}}, nil},
	}
	ca, err := SelfSigned(Spec{CommonName: "CA", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := ca.Issue(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var rdns []rdnSET
			if rest, err := asn1.Unmarshal(leaf.Cert.RawSubject, &rdns); err != nil || len(rest) != 0 {
				t.Fatalf("subject does not decode: %v", err)
			}
			if len(rdns) != len(tt.want) {
				t.Fatalf("%d RDNs, want %d", len(rdns), len(tt.want))
			}
			for i, rdn := range rdns {
				w := tt.want[i]
				if len(rdn) != 1 || !rdn[0].Type.Equal(w.oid) || rdn[0].Value.Tag != w.tag || string(rdn[0].Value.Bytes) != w.value {
					t.Errorf("RDN %d = %v tag %d %q, want %v tag %d %q", i, rdn[0].Type, rdn[0].Value.Tag, rdn[0].Value.Bytes, w.oid, w.tag, w.value)
				}
			}
			if tt.spec.CommonName != "" && leaf.Cert.Subject.CommonName != tt.spec.CommonName {
				t.Errorf("parsed CommonName %q", leaf.Cert.Subject.CommonName)
			}
		})
	}
}

// opaqueSigner hides the concrete key type, like a TPM or PKCS#11 signer would.
type opaqueSigner struct{ crypto.Signer }

func TestSpecErrors(t *testing.T) {
	ca, err := SelfSigned(Spec{CommonName: "CA", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(Spec{CommonName: "Leaf"})
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name string
		make func() (*Issued, error)
	}{
		{"unknown algorithm", func() (*Issued, error) { return SelfSigned(Spec{CommonName: "x", KeyAlgorithm: "DSA-1024"}) }},
		{"algorithm does not match key", func() (*Issued, error) {
			return SelfSigned(Spec{CommonName: "x", Key: ca.Key, KeyAlgorithm: KeyP384})
		}},
		{"NotAfter before NotBefore", func() (*Issued, error) {
			return ca.Issue(Spec{CommonName: "x", NotBefore: now, NotAfter: now.Add(-time.Second)})
		}},
		{"country too long", func() (*Issued, error) { return ca.Issue(Spec{Country: "DEU"}) }},
		{"country not printable", func() (*Issued, error) { return ca.Issue(Spec{Country: "D*"}) }},
		{"DC not ASCII", func() (*Issued, error) { return ca.Issue(Spec{DomainComponent: "CPÖ"}) }},
		{"CN not UTF-8", func() (*Issued, error) { return ca.Issue(Spec{CommonName: "\xff"}) }},
		{"leaf with path length", func() (*Issued, error) { return ca.Issue(Spec{CommonName: "x", MaxPathLen: 2}) }},
		{"zero serial", func() (*Issued, error) { return ca.Issue(Spec{CommonName: "x", Serial: big.NewInt(0)}) }},
		{"negative serial", func() (*Issued, error) { return ca.Issue(Spec{CommonName: "x", Serial: big.NewInt(-5)}) }},
		{"issuer is not a CA", func() (*Issued, error) { return leaf.Issue(Spec{CommonName: "x"}) }},
		{"issuer without key", func() (*Issued, error) { return (&Issued{Cert: ca.Cert}).Issue(Spec{CommonName: "x"}) }},
		{"nil issuer", func() (*Issued, error) { return (*Issued)(nil).Issue(Spec{CommonName: "x"}) }},
		{"unsupported key for AlgorithmOf", func() (*Issued, error) {
			return SelfSigned(Spec{CommonName: "x", Key: edKey, KeyAlgorithm: KeyP256})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.make(); err == nil {
				t.Errorf("no error; made %v", got.Cert.Subject)
			}
		})
	}

	t.Run("KeyPEM of an opaque signer", func(t *testing.T) {
		opaque := &Issued{Cert: leaf.Cert, Key: opaqueSigner{leaf.Key}}
		for _, pw := range []string{"", "pw"} {
			if _, err := opaque.KeyPEM(pw); err == nil {
				t.Errorf("KeyPEM(%q) exported an opaque signer", pw)
			}
		}
	})
}

func TestValidityWindows(t *testing.T) {
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	// A root valid for a millennium, like the reference's expired_leaf fixture, so that only the
	// leaf's window decides.
	root, err := SelfSigned(Spec{CommonName: "V2GRootCA", Country: "DE", DomainComponent: "V2G", IsCA: true, MaxPathLen: -1,
		NotBefore: date(1973, 11, 23), NotAfter: date(2973, 3, 25)})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := writeTemp(t, "root.pem", root.CertPEM())
	tests := []struct {
		name                string
		spec                Spec
		notBefore, notAfter time.Time
		verifyErr           string // openssl's complaint at the current time
	}{
		{"expired", Spec{CommonName: "SECCCert", NotBefore: date(1973, 11, 23), NotAfter: date(1974, 11, 23)},
			date(1973, 11, 23), date(1974, 11, 23), "certificate has expired"},
		{"not yet valid", Spec{CommonName: "SECCCert", NotBefore: date(2123, 11, 23), NotAfter: date(2124, 11, 22)},
			date(2123, 11, 23), date(2124, 11, 22), "certificate is not yet valid"},
		{"NotBefore only: default period from it", Spec{CommonName: "SECCCert", NotBefore: date(2100, 1, 1)},
			date(2100, 1, 1), date(2100+LeafValidityYears, 1, 1), "certificate is not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := root.Issue(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !leaf.Cert.NotBefore.Equal(tt.notBefore) || !leaf.Cert.NotAfter.Equal(tt.notAfter) {
				t.Errorf("validity %v – %v, want %v – %v", leaf.Cert.NotBefore, leaf.Cert.NotAfter, tt.notBefore, tt.notAfter)
			}
			leafFile := writeTemp(t, "leaf.pem", leaf.CertPEM())
			out, err := openssl(t, "verify", "-CAfile", rootFile, leafFile)
			if err == nil || !strings.Contains(out, tt.verifyErr) {
				t.Errorf("openssl verify now: want %q, got %v\n%s", tt.verifyErr, err, out)
			}
			inside := tt.notBefore.Add(24 * time.Hour).Unix()
			mustOpenSSL(t, "verify", "-attime", strconv.FormatInt(inside, 10), "-CAfile", rootFile, leafFile)
		})
	}
}

func TestCrossSigning(t *testing.T) {
	oldRoot, err := SelfSigned(Spec{CommonName: "V2GRootCA 2020", Organization: "EVerest test", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	newSpec := Spec{CommonName: "V2GRootCA 2030", Organization: "EVerest test", IsCA: true, MaxPathLen: -1}
	newRoot, err := SelfSigned(newSpec)
	if err != nil {
		t.Fatal(err)
	}
	crossSpec := newSpec
	crossSpec.Key = newRoot.Key
	cross, err := oldRoot.Issue(crossSpec)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := newRoot.Issue(Spec{CommonName: "CPOSubCA", IsCA: true, MaxPathLen: 0})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := sub.Issue(Spec{CommonName: "SECCCert", DomainComponent: "CPO"})
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.Equal(cross.Cert.RawSubject, newRoot.Cert.RawSubject) ||
		!bytes.Equal(cross.Cert.RawSubjectPublicKeyInfo, newRoot.Cert.RawSubjectPublicKeyInfo) ||
		!bytes.Equal(cross.Cert.SubjectKeyId, newRoot.Cert.SubjectKeyId) {
		t.Fatal("cross certificate differs from the new root in subject, public key or key id")
	}
	if !bytes.Equal(cross.Cert.AuthorityKeyId, oldRoot.Cert.SubjectKeyId) || cross.Issuer != oldRoot {
		t.Error("cross certificate is not linked to the old root")
	}

	oldFile := writeTemp(t, "old.pem", oldRoot.CertPEM())
	newFile := writeTemp(t, "new.pem", newRoot.CertPEM())
	leafFile := writeTemp(t, "leaf.pem", leaf.CertPEM())
	crossAndSub := writeTemp(t, "cross+sub.pem", CertsPEM(cross, sub))
	subOnly := writeTemp(t, "sub.pem", sub.CertPEM())

	mustOpenSSL(t, "verify", "-CAfile", oldFile, "-untrusted", crossAndSub, leafFile)
	mustOpenSSL(t, "verify", "-CAfile", newFile, "-untrusted", subOnly, leafFile)
	if out, err := openssl(t, "verify", "-CAfile", oldFile, "-untrusted", subOnly, leafFile); err == nil {
		t.Errorf("old root verified the leaf without the cross certificate:\n%s", out)
	}

	// A certificate issued through the cross certificate carries it in its chain.
	viaCross, err := cross.Issue(Spec{CommonName: "CPOSubCA via cross", IsCA: true, MaxPathLen: 0})
	if err != nil {
		t.Fatal(err)
	}
	if chain := viaCross.Chain(); len(chain) != 2 || chain[1] != cross.Cert || viaCross.Root() != oldRoot {
		t.Errorf("chain through the cross certificate: %d certs, root %v", len(chain), viaCross.Root().Cert.Subject)
	}
	// The same holds for crypto/x509, which the store verifies with.
	inter := x509.NewCertPool()
	inter.AddCert(cross.Cert)
	inter.AddCert(sub.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(oldRoot.Cert)
	chains, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil || len(chains[0]) != 4 {
		t.Errorf("crypto/x509 verify via cross: %v", err)
	}
}

func TestChain(t *testing.T) {
	root, err := SelfSigned(Spec{CommonName: "Root", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	sub1, err := root.Issue(Spec{CommonName: "Sub1", IsCA: true, MaxPathLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	sub2, err := sub1.Issue(Spec{CommonName: "Sub2", IsCA: true, MaxPathLen: 0})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := sub2.Issue(Spec{CommonName: "Leaf"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		of   *Issued
		want []string
	}{
		{"leaf", leaf, []string{"Leaf", "Sub2", "Sub1"}},
		{"sub-CA", sub2, []string{"Sub2", "Sub1"}},
		{"self-signed root is its own chain", root, []string{"Root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			rest := tt.of.ChainPEM()
			for {
				var block *pem.Block
				block, rest = pem.Decode(rest)
				if block == nil {
					break
				}
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, c.Subject.CommonName)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ChainPEM = %v, want %v", got, tt.want)
			}
			if tt.of.Root() != root {
				t.Error("Root() is not the root")
			}
			tc := tt.of.TLSCertificate()
			if len(tc.Certificate) != len(tt.want) || tc.Leaf != tt.of.Cert || tc.PrivateKey != tt.of.Key {
				t.Error("TLSCertificate does not carry the chain and key")
			}
		})
	}
}
