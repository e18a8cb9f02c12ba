package certs

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
)

// HashAlgorithm names the digest of an OCPP CertificateHashData. The values are the interface's
// enum strings.
type HashAlgorithm string

// The digests OCPP allows for CertificateHashData.
const (
	SHA256 HashAlgorithm = "SHA256"
	SHA384 HashAlgorithm = "SHA384"
	SHA512 HashAlgorithm = "SHA512"
)

// HashData is OCPP's CertificateHashData: it names a certificate by the hash of its issuer's
// name, the hash of its issuer's public key and its serial number.
type HashData struct {
	Algorithm      HashAlgorithm `json:"hash_algorithm"`
	IssuerNameHash string        `json:"issuer_name_hash"`
	IssuerKeyHash  string        `json:"issuer_key_hash"`
	SerialNumber   string        `json:"serial_number"`
}

// ParseHashAlgorithm returns the HashAlgorithm named by s. The interface's spellings (SHA256,
// SHA384, SHA512) are accepted in any ASCII case.
func ParseHashAlgorithm(s string) (HashAlgorithm, error) {
	for _, a := range []HashAlgorithm{SHA256, SHA384, SHA512} {
		if asciiEqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown hash algorithm %q (want SHA256, SHA384 or SHA512)", s)
}

// newHash returns a fresh digest for alg.
func newHash(alg HashAlgorithm) (hash.Hash, error) {
	switch alg {
	case SHA256:
		return sha256.New(), nil
	case SHA384:
		return sha512.New384(), nil
	case SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown hash algorithm %q (want SHA256, SHA384 or SHA512)", string(alg))
}

// subjectPublicKeyInfo is the outer structure of a certificate's public key; only the BIT STRING
// matters for the issuer key hash.
type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// ComputeHashData returns the OCPP hash data of cert, whose issuer is issuer (cert itself for a
// self-signed certificate): the digest of cert's issuer Name exactly as encoded in cert, the
// digest of the issuer's subjectPublicKey BIT STRING contents (without tag, length and
// unused-bits octet, as OpenSSL's X509_pubkey_digest and OCSP's issuerKeyHash), and the serial as
// SerialHex. Hex is lowercase.
//
// It does not check that issuer signed cert; finding the right issuer is the chain code's job.
func ComputeHashData(cert, issuer *x509.Certificate, alg HashAlgorithm) (HashData, error) {
	if cert == nil || issuer == nil {
		return HashData{}, errors.New("hash data: nil certificate")
	}
	h, err := newHash(alg)
	if err != nil {
		return HashData{}, err
	}
	var spki subjectPublicKeyInfo
	rest, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki)
	if err != nil {
		return HashData{}, fmt.Errorf("hash data: issuer public key: %w", err)
	}
	if len(rest) != 0 {
		return HashData{}, errors.New("hash data: issuer public key: trailing data")
	}
	h.Write(cert.RawIssuer)
	nameHash := hex.EncodeToString(h.Sum(nil))
	h.Reset()
	h.Write(spki.PublicKey.Bytes)
	keyHash := hex.EncodeToString(h.Sum(nil))
	return HashData{
		Algorithm:      alg,
		IssuerNameHash: nameHash,
		IssuerKeyHash:  keyHash,
		SerialNumber:   SerialHex(cert.SerialNumber),
	}, nil
}

// SerialHex formats a certificate serial number the way OCPP hash data carries it: lowercase hex
// without leading zeros, "0" for zero, and "-" before the digits of a negative serial. A nil
// serial gives "" (which Validate rejects) rather than a made-up number.
func SerialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16) // lowercase, minimal digits, "-" prefix for negatives
}

// Equal reports whether h and o name the same certificate: same algorithm, the hashes equal up to
// ASCII case, and the serials equal up to ASCII case and leading zeros ("0A3F" equals "a3f"),
// because CSMSs send hex in either case and some pad serials to whole bytes.
func (h HashData) Equal(o HashData) bool {
	return h.Algorithm == o.Algorithm &&
		asciiEqualFold(h.IssuerNameHash, o.IssuerNameHash) &&
		asciiEqualFold(h.IssuerKeyHash, o.IssuerKeyHash) &&
		asciiEqualFold(trimSerial(h.SerialNumber), trimSerial(o.SerialNumber))
}

// Normalize returns h in the form ComputeHashData produces: hex in lowercase, the serial without
// leading zeros, and the algorithm in its interface spelling when it is a known one. Normalized
// values can be compared with == and used as map keys.
func (h HashData) Normalize() HashData {
	if a, err := ParseHashAlgorithm(string(h.Algorithm)); err == nil {
		h.Algorithm = a
	}
	h.IssuerNameHash = asciiLower(h.IssuerNameHash)
	h.IssuerKeyHash = asciiLower(h.IssuerKeyHash)
	h.SerialNumber = asciiLower(trimSerial(h.SerialNumber))
	return h
}

// maxSerialHex is the longest serial RFC 5280 allows: 20 octets.
const maxSerialHex = 40

// Validate checks that h is well-formed hash data as received from the interface: a known
// algorithm, both hashes hex of that digest's length, and the serial non-empty hex of at most 40
// digits once leading zeros are dropped. It says nothing about whether such a certificate exists.
func (h HashData) Validate() error {
	hs, err := newHash(h.Algorithm)
	if err != nil {
		return fmt.Errorf("hash_algorithm: %w", err)
	}
	want := 2 * hs.Size()
	for _, f := range []struct{ name, value string }{
		{"issuer_name_hash", h.IssuerNameHash},
		{"issuer_key_hash", h.IssuerKeyHash},
	} {
		if len(f.value) != want {
			return fmt.Errorf("%s: %d hex digits, want %d for %s", f.name, len(f.value), want, h.Algorithm)
		}
		if !isHex(f.value) {
			return fmt.Errorf("%s: not hexadecimal: %q", f.name, f.value)
		}
	}
	switch {
	case h.SerialNumber == "":
		return errors.New("serial_number: empty")
	case !isHex(h.SerialNumber):
		return fmt.Errorf("serial_number: not hexadecimal: %q", h.SerialNumber)
	case len(trimSerial(h.SerialNumber)) > maxSerialHex:
		return fmt.Errorf("serial_number: %d hex digits, at most %d allowed", len(trimSerial(h.SerialNumber)), maxSerialHex)
	}
	return nil
}

// trimSerial drops leading '0' digits, keeping one digit for zero.
func trimSerial(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" && s != "" {
		return "0"
	}
	return t
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// asciiEqualFold compares ASCII case-insensitively. strings.EqualFold is not used because it
// applies Unicode folding (e.g. the Kelvin sign equals 'k'), which hex input must not get.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// asciiLower lowercases ASCII letters only; other bytes are kept.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
