package certs

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ErrOCSPStale is returned (wrapped) by CheckOCSPResponse for a response past its nextUpdate.
var ErrOCSPStale = errors.New("the response is past its nextUpdate")

// CheckOCSPResponse is the one judgement of an OCSP response for cert, issued by issuer, at now.
// The store applies it when a response is cached, when it names the cached file to a consumer
// and when garbage collection sweeps the cache; the ISO 15118 TLS server applies it before it
// staples. One function, so that what the store hands out is exactly what a server staples.
//
// The response must be a successful basic response whose single response for cert's serial
// names cert's issuer by name and key hash (in whatever digest the responder chose), signed
// either by the issuer's own key — with or without the issuer's certificate embedded, which
// `openssl ocsp` and most CA responders include by default — or by a delegated responder whose
// embedded certificate the issuer signed, that carries the OCSPSigning extended key usage and is
// valid at now (RFC 6960 §4.2.2.2); and it must not be past its nextUpdate.
func CheckOCSPResponse(der []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	if cert == nil || issuer == nil {
		return nil, errors.New("OCSP response check: nil certificate")
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		// x/crypto treats any embedded certificate as a delegated responder and wants the
		// issuer to have signed it; when the embedded certificate is the issuer's own (a
		// sub-CA signed by its root, not by itself), that check fails although the response
		// is signed by the issuer's key. Parse again without the issuer (the signature is then
		// checked against the embedded certificate) and accept it when that certificate holds
		// the issuer's key.
		alt, altErr := ocsp.ParseResponseForCert(der, cert, nil)
		if altErr != nil || alt.Certificate == nil || !sameKey(alt.Certificate, issuer) {
			return nil, err
		}
		resp = alt
	} else if resp.Certificate != nil && !sameKey(resp.Certificate, issuer) {
		if err := checkDelegatedResponder(resp.Certificate, now); err != nil {
			return nil, err
		}
	}
	if err := checkCertID(resp, cert, issuer); err != nil {
		return nil, err
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		return nil, fmt.Errorf("%w (%s)", ErrOCSPStale, resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	return resp, nil
}

// OCSPUsableUntil is the last moment a response CheckOCSPResponse accepted for a certificate of
// issuer stays acceptable: its nextUpdate, or the end of its delegated responder's validity when
// that comes first. Zero means no limit (no nextUpdate: "newer information is always available").
func OCSPUsableUntil(resp *ocsp.Response, issuer *x509.Certificate) time.Time {
	until := resp.NextUpdate
	if rc := resp.Certificate; rc != nil && !sameKey(rc, issuer) && (until.IsZero() || rc.NotAfter.Before(until)) {
		until = rc.NotAfter
	}
	return until
}

// sameKey reports whether a and b hold the same public key.
func sameKey(a, b *x509.Certificate) bool {
	if bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo) {
		return true
	}
	eq, ok := a.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b.PublicKey)
}

// checkDelegatedResponder checks the responder certificate of a response not signed by the
// issuer's own key (x/crypto has checked that the issuer signed it).
func checkDelegatedResponder(rc *x509.Certificate, now time.Time) error {
	delegated := false
	for _, u := range rc.ExtKeyUsage {
		delegated = delegated || u == x509.ExtKeyUsageOCSPSigning
	}
	if !delegated {
		return fmt.Errorf("the response is signed by %q, which is not an OCSP responder (no OCSPSigning usage)", rc.Subject.String())
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return fmt.Errorf("the responder certificate %q is not valid now (%s to %s)", rc.Subject.String(), rc.NotBefore.UTC().Format(time.RFC3339), rc.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// The ASN.1 of a BasicOCSPResponse's ResponseData, as far as CertIDs go (RFC 6960 §4.2.1).
// x/crypto/ocsp matches a response to a certificate by serial only; the issuer hashes are
// checked here, so a response about another CA's certificate with the same serial is refused.
type (
	ocspCertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}
	ocspSingleResponse struct {
		CertID ocspCertID // the status and times follow; asn1 ignores them
	}
	ocspResponseData struct {
		Version        int `asn1:"optional,default:0,explicit,tag:0"`
		RawResponderID asn1.RawValue
		ProducedAt     time.Time `asn1:"generalized"`
		Responses      []ocspSingleResponse
	}
)

// The CertID digests responders use (SHA-1 is the common default).
var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// checkCertID checks that the single response x/crypto chose for cert (the first with its
// serial) names cert's issuer by name and key.
func checkCertID(resp *ocsp.Response, cert, issuer *x509.Certificate) error {
	var rd ocspResponseData
	if _, err := asn1.Unmarshal(resp.TBSResponseData, &rd); err != nil {
		return fmt.Errorf("response data: %w", err)
	}
	for _, sr := range rd.Responses {
		id := sr.CertID
		if id.SerialNumber == nil || id.SerialNumber.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		var newHash func() hash.Hash
		switch alg := id.HashAlgorithm.Algorithm; {
		case alg.Equal(oidSHA1):
			newHash = sha1.New
		case alg.Equal(oidSHA256):
			newHash = sha256.New
		case alg.Equal(oidSHA384):
			newHash = sha512.New384
		case alg.Equal(oidSHA512):
			newHash = sha512.New
		default:
			return fmt.Errorf("unsupported CertID hash algorithm %v", alg)
		}
		var spki subjectPublicKeyInfo
		if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
			return fmt.Errorf("issuer public key: %w", err)
		}
		nameHash, keyHash := newHash(), newHash()
		nameHash.Write(cert.RawIssuer)
		keyHash.Write(spki.PublicKey.Bytes)
		if !bytes.Equal(id.NameHash, nameHash.Sum(nil)) || !bytes.Equal(id.IssuerKeyHash, keyHash.Sum(nil)) {
			return errors.New("the response is for a certificate of another issuer with the same serial")
		}
		return nil
	}
	return errors.New("the response is for another certificate")
}
