package tlsconf

import (
	"crypto/x509"
	"log/slog"
	"os"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// attachStaple sets the cached OCSP response of the leaf as the certificate's OCSP staple, byte
// for byte as the store keeps it. The response is judged by certs.CheckOCSPResponse, the very
// function the store applied when it cached the response and when it named the file, so the two
// cannot disagree about a response (signed by the issuer with or without its certificate
// embedded, or by a delegated responder); it also says until when the staple may be served. A
// response that is missing, unreadable or no longer acceptable is not stapled, and the leaf is
// served without one: a stale staple makes a strict client refuse a certificate that is fine.
func (c *candidate) attachStaple(info store.CertificateInfo, now time.Time, log *slog.Logger) {
	leaf, issuer := c.chain[0], c.issuerOf()
	path := leafOCSPPath(info, leaf, issuer)
	if path == "" {
		return
	}
	der, err := os.ReadFile(path)
	if err != nil {
		log.Warn("OCSP response not stapled: unreadable", "leaf", describe(leaf), "path", path, "err", err)
		return
	}
	resp, err := certs.CheckOCSPResponse(der, leaf, issuer, now)
	if err != nil {
		log.Warn("OCSP response not stapled", "leaf", describe(leaf), "path", path, "err", err)
		return
	}
	c.cert.OCSPStaple = der
	c.stapleUntil = certs.OCSPUsableUntil(resp, issuer)
}

// issuerOf is the certificate that issued the leaf: the first sub-CA, or the anchor.
func (c *candidate) issuerOf() *x509.Certificate {
	if len(c.chain) > 1 {
		return c.chain[1]
	}
	return c.anchor
}

// leafOCSPPath finds the cached response of the leaf among info's OCSP entries: the entry whose
// hash data names the leaf (normally the first, as the entries follow the chain, leaf first).
func leafOCSPPath(info store.CertificateInfo, leaf, issuer *x509.Certificate) string {
	for _, e := range info.OCSP {
		if e.OCSPPath == "" {
			continue
		}
		if h, err := certs.ComputeHashData(leaf, issuer, e.Hash.Algorithm); err == nil && h.Equal(e.Hash) {
			return e.OCSPPath
		}
	}
	return ""
}
