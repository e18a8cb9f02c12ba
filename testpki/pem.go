package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
)

// CertPEM is the certificate as one PEM "CERTIFICATE" block.
func (i *Issued) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.Cert.Raw})
}

// Chain is this certificate followed by its issuers, up to but excluding the self-signed root:
// what a TLS server sends and what EVerest's chain files (CPO_CERT_CHAIN.pem) hold.
func (i *Issued) Chain() []*x509.Certificate {
	var chain []*x509.Certificate
	for c := i; c != nil && c.Issuer != nil; c = c.Issuer {
		chain = append(chain, c.Cert)
	}
	if len(chain) == 0 {
		// A self-signed certificate is its own chain.
		chain = append(chain, i.Cert)
	}
	return chain
}

// ChainPEM is Chain as concatenated PEM blocks, leaf first.
func (i *Issued) ChainPEM() []byte {
	var out []byte
	for _, c := range i.Chain() {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// Root is the self-signed certificate at the top of this certificate's issuer links.
func (i *Issued) Root() *Issued {
	r := i
	for r.Issuer != nil {
		r = r.Issuer
	}
	return r
}

// TLSCertificate is the certificate, its chain and key in the form crypto/tls serves.
func (i *Issued) TLSCertificate() tls.Certificate {
	var ders [][]byte
	for _, c := range i.Chain() {
		ders = append(ders, c.Raw)
	}
	return tls.Certificate{Certificate: ders, PrivateKey: i.Key, Leaf: i.Cert}
}

// CertsPEM concatenates the PEM blocks of certs in the order given, the form of a bundle file.
func CertsPEM(certs ...*Issued) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.CertPEM()...)
	}
	return out
}
