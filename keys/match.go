package keys

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
)

// Keys and certificates belong together when their public keys are equal, never by file name:
// the reference names CSR keys and the certificates installed for them independently.

// PublicKeysEqual reports whether two public keys are the same key, using the Equal method the
// standard library's key types have. Keys of different types, nil keys and types without Equal
// are never equal.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	if a == nil || b == nil {
		return false
	}
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// Matches reports whether pub is the public key of cert, i.e. whether the private key behind pub
// can act for the certificate (OpenSSL's X509_check_private_key).
func Matches(cert *x509.Certificate, pub crypto.PublicKey) bool {
	return cert != nil && PublicKeysEqual(cert.PublicKey, pub)
}

// subjectPublicKeyInfo is the X.509 SubjectPublicKeyInfo, parsed to reach the key's bit string.
type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// SubjectKeyID returns the key identifier of RFC 5280 §4.2.1.2 method 1: the SHA-1 of the
// subjectPublicKey BIT STRING's contents. It equals the Subject Key Identifier OpenSSL puts into
// certificates by default, so a key file named after it can be found from a certificate without
// opening every key. It fails for key types crypto/x509 cannot encode.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: public key of type %T", ErrUnsupported, pub)
	}
	var spki subjectPublicKeyInfo
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("keys: re-reading an encoded public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// Fingerprint returns the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo (the value
// of `openssl pkey -pubout -outform DER | sha256sum`), a stable name for a key in logs and
// listings. It returns "" for key types crypto/x509 cannot encode.
func Fingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
