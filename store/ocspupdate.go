package store

import (
	"bytes"
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
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// UpdateOCSPCache stores the OCSP response for the certificate named by h, which may be any
// certificate of the store: a CSMS or SECC leaf, a sub-CA of a chain file, a CA of any domain.
// The response is base64 of a DER OCSPResponse (RFC 6960), as OCPP delivers it: it is decoded,
// parsed, and must be a successful response whose CertID names exactly that certificate (serial,
// issuer name hash and issuer key hash), signed by its issuer or by a responder the issuer
// delegated to (OCSPSigning usage, valid now), and not past its nextUpdate. Its DER is then
// stored in the ocsp/ directory next to the file holding the certificate, with the .hash
// sidecar; a second response replaces the first, wherever that one was stored. Anything else is
// rejected and the cache is unchanged; the interface has no result, so the reason is logged and
// returned.
func (s *Store) UpdateOCSPCache(h certs.HashData, responseB64 string) error {
	if err := h.Validate(); err != nil {
		s.log.Warn("update_ocsp_cache rejected: invalid hash data", "err", err)
		return err
	}
	h = h.Normalize()
	if s.tooLarge("update_ocsp_cache", responseB64) {
		return errors.New("OCSP response too large")
	}
	der, err := certs.DecodeBase64(responseB64)
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: response is not base64", "err", err)
		return err
	}
	unlock, err := s.lock.lock()
	if err != nil {
		s.log.Error("update_ocsp_cache: cannot lock the store", "err", err)
		return err
	}
	defer unlock()
	v := s.readCAs()
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	pool := s.hashPool(v, sets...)
	target, issuer, ok := findByHashData(pool, s.allStoredCerts(v, sets), h)
	if !ok {
		err := errors.New("no certificate in the store has this hash data")
		s.log.Warn("update_ocsp_cache rejected", "serial", h.SerialNumber, "err", err)
		return err
	}
	resp, err := parseOCSPResponse(der, target.cert, issuer, s.now())
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: not a valid OCSP response for this certificate", "cert", describe(target.cert), "err", err)
		return err
	}
	path, err := s.storeOCSP(target, h, der)
	if err != nil {
		s.log.Error("update_ocsp_cache: write failed", "cert", describe(target.cert), "err", err)
		return err
	}
	s.log.Info("cached OCSP response", "cert", describe(target.cert), "status", ocspStatus(resp.Status), "next_update", resp.NextUpdate, "path", path)
	return nil
}

// storeOCSP writes der as the cached response of target (named by h): over the entry next to
// target's file when there is one, else as a new pair there. Entries for the same certificate in
// other cache directories (the certificate was stored elsewhere when they were written) are
// removed, so no older response can be found before the new one.
func (s *Store) storeOCSP(target storedCert, h certs.HashData, der []byte) (string, error) {
	dir := filepath.Join(filepath.Dir(target.file), ocspDirName)
	derPath, hashPath := "", ""
	var others []ocspEntry
	seen := map[string]bool{}
	for _, d := range append([]string{dir}, s.ocspDirs()...) {
		if seen[d] {
			continue
		}
		seen[d] = true
		for _, e := range s.readOCSPEntries(d) {
			if !s.ocspEntryMatches(e, target.cert, h) {
				continue
			}
			if d == dir && derPath == "" {
				derPath, hashPath = e.derPath, e.hashPth
			} else {
				others = append(others, e)
			}
		}
	}
	fresh := derPath == ""
	if fresh {
		stem := certs.SerialHex(target.cert.SerialNumber) + "_" + h.IssuerKeyHash[:16] + "_ocsp"
		derPath, hashPath = filepath.Join(dir, stem+".der"), filepath.Join(dir, stem+".hash")
	}
	_, statErr := s.fs.Stat(dir)
	newDir := statErr != nil
	if err := writeAtomic(s.fs, derPath, der, 0o644, 0o755); err != nil {
		return "", err
	}
	if err := s.writeIfChanged(hashPath, formatHashFile(h), 0o644); err != nil {
		if fresh {
			// A .der without its .hash is found by nobody; do not leave it behind, nor the
			// ocsp/ directory this write made for it.
			if rerr := removeDurable(s.fs, derPath); rerr != nil {
				s.log.Warn("cannot remove OCSP response after a failed write", "path", derPath, "err", rerr)
			} else if newDir {
				if rerr := removeDurable(s.fs, dir); rerr != nil {
					s.log.Warn("cannot remove the new OCSP directory after a failed write", "dir", dir, "err", rerr)
				}
			}
		}
		return "", err
	}
	for _, e := range others {
		s.log.Info("removing the older cached OCSP response of the same certificate", "path", e.derPath)
		s.removeOCSPEntry(e)
	}
	return derPath, nil
}

// parseOCSPResponse parses a DER OCSPResponse for cert, issued by issuer, and checks it at now:
// a successful basic response whose first single response for cert's serial has cert's CertID
// (issuer name and key hash in whatever digest the responder used), signed by the issuer's key
// or by a delegated responder certificate that the issuer signed, that carries the OCSPSigning
// extended key usage and is valid now (RFC 6960 §4.2.2.2), and not past its nextUpdate.
func parseOCSPResponse(der []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		// A responder that signs with the issuer's own key often embeds the issuer's
		// certificate; x/crypto then wants the issuer to have signed itself. Parse without the
		// issuer (the signature is then checked against the embedded certificate) and accept
		// it when the embedded certificate holds the issuer's key.
		alt, altErr := ocsp.ParseResponseForCert(der, cert, nil)
		if altErr != nil || alt.Certificate == nil || !keys.PublicKeysEqual(alt.Certificate.PublicKey, issuer.PublicKey) {
			return nil, err
		}
		resp = alt
	} else if resp.Certificate != nil && !keys.PublicKeysEqual(resp.Certificate.PublicKey, issuer.PublicKey) {
		if err := checkDelegatedResponder(resp.Certificate, now); err != nil {
			return nil, err
		}
	}
	if err := checkCertID(resp, cert, issuer); err != nil {
		return nil, err
	}
	if err := checkFresh(resp, now); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkDelegatedResponder checks the responder certificate of a response not signed by the
// issuer's own key (x/crypto has checked that the issuer signed it).
func checkDelegatedResponder(rc *x509.Certificate, now time.Time) error {
	delegated := false
	for _, u := range rc.ExtKeyUsage {
		delegated = delegated || u == x509.ExtKeyUsageOCSPSigning
	}
	if !delegated {
		return fmt.Errorf("the response is signed by %s, which is not an OCSP responder (no OCSPSigning usage)", describe(rc))
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return fmt.Errorf("the responder certificate %s is not valid now (%s to %s)", describe(rc), rc.NotBefore.UTC().Format(time.RFC3339), rc.NotAfter.UTC().Format(time.RFC3339))
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
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
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

func ocspStatus(st int) string {
	switch st {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}
