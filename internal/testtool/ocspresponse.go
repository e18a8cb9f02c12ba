package testtool

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPResponse makes a base64 DER OCSP response about cert signed by its issuer (issuerKey), as a
// CSMS delivers it to update_ocsp_cache: good, or revoked when revoked is set.
func OCSPResponse(t testing.TB, cert, issuer *x509.Certificate, issuerKey crypto.Signer, revoked bool, thisUpdate, nextUpdate time.Time) string {
	t.Helper()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: cert.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: nextUpdate, IssuerHash: crypto.SHA256}
	if revoked {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, thisUpdate, ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(issuer, issuer, tmpl, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}
