package testtool

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// VerifySignature checks a signature over digest with pub, the way a TLS peer or CA would: ECDSA
// (ASN.1), RSA PKCS#1 v1.5, or RSA-PSS when opts are *rsa.PSSOptions.
func VerifySignature(t testing.TB, pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) {
	t.Helper()
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		var err error
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			err = rsa.VerifyPSS(p, opts.HashFunc(), digest, sig, pss)
		} else {
			err = rsa.VerifyPKCS1v15(p, opts.HashFunc(), digest, sig)
		}
		if err != nil {
			t.Fatalf("RSA signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

// SignedCSR makes a CSR with common name cn signed by s (a hardware key in the backend tests),
// checks its signature and returns its DER.
func SignedCSR(t testing.TB, s crypto.Signer, cn string) []byte {
	t.Helper()
	alg := x509.SHA256WithRSA
	if k, ok := s.Public().(*ecdsa.PublicKey); ok {
		switch k.Curve {
		case elliptic.P384():
			alg = x509.ECDSAWithSHA384
		case elliptic.P521():
			alg = x509.ECDSAWithSHA512
		default:
			alg = x509.ECDSAWithSHA256
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:            pkix.Name{Country: []string{"DE"}, Organization: []string{"evsesec"}, CommonName: cn},
		SignatureAlgorithm: alg,
	}, s)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	return der
}
