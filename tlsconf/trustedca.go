package tlsconf

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/evsesec/evsesec/certs"
)

// A ClientHello can name the CAs its sender trusts in two extensions: trusted_ca_keys (RFC 6066
// §6), which ISO 15118-2 requires the car to send with the V2G roots it holds, and
// certificate_authorities (RFC 8446 §4.2.4), the TLS 1.3 way. Go's ClientHelloInfo carries
// neither (only extension numbers), so the ClientHello is read from the bytes NewHelloConn
// recorded.
const (
	extTrustedCAKeys          = 3
	extCertificateAuthorities = 47
)

// The identifier types of a TrustedAuthority (RFC 6066 §6).
const (
	caPreAgreed   = 0
	caKeySHA1     = 1
	caX509Name    = 2
	caCertSHA1    = 3
	sha1Size      = 20
	typeHandshake = 22
	typeHello     = 1
)

// caID is what a ClientHello may name a CA by (RFC 6066 trusted_ca_keys, RFC 8446
// certificate_authorities): the SHA-1 of its public key, the SHA-1 of the certificate, its
// subject name.
type caID struct {
	keySHA1  [][]byte // of the subjectPublicKey bits; for RSA also of the modulus (RFC 6066 §6)
	certSHA1 []byte
	subject  []byte
}

func newCAID(c *x509.Certificate) caID {
	id := caID{subject: c.RawSubject}
	h := sha1.Sum(c.Raw)
	id.certSHA1 = h[:]
	for _, k := range publicKeyHashInputs(c) {
		h := sha1.Sum(k)
		id.keySHA1 = append(id.keySHA1, h[:])
	}
	return id
}

// caIndications are the CAs a ClientHello named.
type caIndications struct {
	keySHA1  [][]byte
	certSHA1 [][]byte
	names    [][]byte // DER Names
}

func (ci caIndications) empty() bool {
	return len(ci.keySHA1) == 0 && len(ci.certSHA1) == 0 && len(ci.names) == 0
}

// match reports whether the indications name the CA id.
func (ci caIndications) match(id caID) bool {
	for _, h := range ci.certSHA1 {
		if bytes.Equal(h, id.certSHA1) {
			return true
		}
	}
	for _, h := range ci.keySHA1 {
		for _, k := range id.keySHA1 {
			if bytes.Equal(h, k) {
				return true
			}
		}
	}
	for _, n := range ci.names {
		if certs.NamesEqual(n, id.subject) {
			return true
		}
	}
	return false
}

// parseClientHello reads the CA indications of a ClientHello handshake message (with its 4-byte
// header). Unknown extensions are skipped; a malformed message is an error.
func parseClientHello(msg []byte) (caIndications, error) {
	var ci caIndications
	s := cryptobyte.String(msg)
	var typ uint8
	var body, sessionID, suites, compression, exts cryptobyte.String
	if !s.ReadUint8(&typ) || typ != typeHello || !s.ReadUint24LengthPrefixed(&body) ||
		!body.Skip(2+32) || !body.ReadUint8LengthPrefixed(&sessionID) ||
		!body.ReadUint16LengthPrefixed(&suites) || !body.ReadUint8LengthPrefixed(&compression) {
		return ci, errors.New("malformed ClientHello")
	}
	if body.Empty() {
		return ci, nil // no extensions at all
	}
	if !body.ReadUint16LengthPrefixed(&exts) {
		return ci, errors.New("malformed ClientHello extensions")
	}
	for !exts.Empty() {
		var ext uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&ext) || !exts.ReadUint16LengthPrefixed(&data) {
			return ci, errors.New("malformed ClientHello extension")
		}
		var err error
		switch ext {
		case extTrustedCAKeys:
			err = ci.readTrustedCAKeys(data)
		case extCertificateAuthorities:
			err = ci.readCertificateAuthorities(data)
		}
		if err != nil {
			return ci, err
		}
	}
	return ci, nil
}

// readTrustedCAKeys reads TrustedAuthorities: a list of (identifier type, identifier).
func (ci *caIndications) readTrustedCAKeys(data cryptobyte.String) error {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return errors.New("malformed trusted_ca_keys")
	}
	for !list.Empty() {
		var kind uint8
		if !list.ReadUint8(&kind) {
			return errors.New("malformed trusted_ca_keys entry")
		}
		var id []byte
		switch kind {
		case caPreAgreed:
			continue
		case caKeySHA1, caCertSHA1:
			if !list.ReadBytes(&id, sha1Size) {
				return errors.New("malformed trusted_ca_keys hash")
			}
			if kind == caKeySHA1 {
				ci.keySHA1 = append(ci.keySHA1, id)
			} else {
				ci.certSHA1 = append(ci.certSHA1, id)
			}
		case caX509Name:
			var name cryptobyte.String
			if !list.ReadUint16LengthPrefixed(&name) {
				return errors.New("malformed trusted_ca_keys name")
			}
			ci.names = append(ci.names, name)
		default:
			return errors.New("unknown trusted_ca_keys identifier type")
		}
	}
	return nil
}

// readCertificateAuthorities reads a list of DER DistinguishedNames.
func (ci *caIndications) readCertificateAuthorities(data cryptobyte.String) error {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return errors.New("malformed certificate_authorities")
	}
	for !list.Empty() {
		var name cryptobyte.String
		if !list.ReadUint16LengthPrefixed(&name) || name.Empty() {
			return errors.New("malformed certificate_authorities name")
		}
		ci.names = append(ci.names, name)
	}
	return nil
}

// publicKeyHashInputs are the bytes whose SHA-1 a key_sha1_hash may carry for c's key: the
// subjectPublicKey bits (RFC 6066 for EC keys, and what most implementations hash for every
// key), and for RSA the modulus without leading zeros (RFC 6066's rule for RSA).
func publicKeyHashInputs(c *x509.Certificate) [][]byte {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	var out [][]byte
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err == nil {
		out = append(out, spki.PublicKey.RightAlign())
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
		out = append(out, k.N.Bytes())
	}
	return out
}
