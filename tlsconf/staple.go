package tlsconf

import (
	"crypto/x509"
	"log/slog"
	"os"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// attachStaple sets the cached OCSP response of the leaf as the certificate's OCSP staple, byte
// for byte as the store keeps it. The store checked the response when it was cached; here it is
// parsed again only to learn until when it may be stapled (nextUpdate). A response that is
// missing, unreadable or already past its nextUpdate is not stapled, and the leaf is served
// without one: a stale staple makes a strict client refuse a certificate that is fine.
func (c *candidate) attachStaple(info store.CertificateInfo, now time.Time, log *slog.Logger) {
	leaf := c.chain[0]
	path := leafOCSPPath(info, leaf, c.issuerOf())
	if path == "" {
		return
	}
	der, err := os.ReadFile(path)
	if err != nil {
		log.Warn("OCSP response not stapled: unreadable", "leaf", describe(leaf), "path", path, "err", err)
		return
	}
	resp, err := ocsp.ParseResponseForCert(der, leaf, c.issuerOf())
	if err != nil {
		log.Warn("OCSP response not stapled: unparsable", "leaf", describe(leaf), "path", path, "err", err)
		return
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		log.Warn("OCSP response not stapled: past its nextUpdate", "leaf", describe(leaf), "path", path, "next_update", resp.NextUpdate)
		return
	}
	c.cert.OCSPStaple = der
	c.stapleUntil = resp.NextUpdate
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
