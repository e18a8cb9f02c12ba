package keys

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
)

// The DER structures of unencrypted keys, declared only as far as needed to tell formats apart
// and to say why a key the x509 parsers reject is unsupported rather than damaged.

// privateKeyInfo is PKCS#8's PrivateKeyInfo (RFC 5958 OneAsymmetricKey without the optional
// trailing fields, which encoding/asn1 skips).
type privateKeyInfo struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// sec1PrivateKey is SEC 1's ECPrivateKey (RFC 5915) up to the curve.
type sec1PrivateKey struct {
	Version    int
	PrivateKey []byte
	Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
}

// pkcs1Prefix is the start of PKCS#1's RSAPrivateKey.
type pkcs1Prefix struct {
	Version int
	Modulus *big.Int
}

var (
	oidRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// goCurves are the named curves crypto/x509 decodes (P-224 is not an Algorithm of ours but still
// loads, as it would in OpenSSL).
var goCurves = []asn1.ObjectIdentifier{
	{1, 3, 132, 0, 33},          // P-224
	{1, 2, 840, 10045, 3, 1, 7}, // P-256
	{1, 3, 132, 0, 34},          // P-384
	{1, 3, 132, 0, 35},          // P-521
}

// oidNames names algorithms and curves that appear in real key files but that Go cannot use, so
// that an operator reading the error knows what the file holds.
var oidNames = map[string]string{
	"1.2.840.10040.4.1":       "DSA",
	"1.2.840.10046.2.1":       "DH",
	"1.2.840.113549.1.1.10":   "RSASSA-PSS",
	"1.3.101.113":             "Ed448",
	"1.3.101.111":             "X448",
	"1.2.156.10197.1.301":     "SM2",
	"1.3.132.0.10":            "secp256k1",
	"1.3.36.3.3.2.8.1.1.7":    "brainpoolP256r1",
	"1.3.36.3.3.2.8.1.1.11":   "brainpoolP384r1",
	"1.3.36.3.3.2.8.1.1.13":   "brainpoolP512r1",
	"1.2.840.113549.1.5.3":    "PBES1 pbeWithMD5AndDES-CBC",
	"1.2.840.113549.1.5.10":   "PBES1 pbeWithSHA1AndDES-CBC",
	"1.2.840.113549.1.12.1.3": "PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC",
	"1.2.840.113549.1.12.1.6": "PKCS#12 pbeWithSHAAnd40BitRC2-CBC",
	"2.16.840.1.101.3.4.1.6":  "AES-128-GCM",
	"2.16.840.1.101.3.4.1.26": "AES-192-GCM",
	"2.16.840.1.101.3.4.1.46": "AES-256-GCM",
	"1.2.840.113549.2.10":     "hmacWithSHA384",
	"1.2.840.113549.2.11":     "hmacWithSHA512",
}

// oidName returns a readable name for an OID, falling back to its dotted form.
func oidName(oid asn1.ObjectIdentifier) string {
	if name, ok := oidNames[oid.String()]; ok {
		return name + " (" + oid.String() + ")"
	}
	return "OID " + oid.String()
}

func isGoCurve(oid asn1.ObjectIdentifier) bool {
	for _, c := range goCurves {
		if oid.Equal(c) {
			return true
		}
	}
	return false
}

func looksLikePKCS8(der []byte) bool {
	var info privateKeyInfo
	_, err := asn1.Unmarshal(der, &info)
	return err == nil && (info.Version == 0 || info.Version == 1)
}

func looksLikeSEC1(der []byte) bool {
	var key sec1PrivateKey
	_, err := asn1.Unmarshal(der, &key)
	return err == nil && key.Version == 1
}

// parsePKCS8 decodes an unencrypted PKCS#8 key.
func parsePKCS8(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err == nil {
		return asSigner(key)
	}
	var info privateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fail(ErrMalformed, "not a PKCS#8 PrivateKeyInfo")
	}
	switch alg := info.Algorithm.Algorithm; {
	case alg.Equal(oidRSA):
		return nil, fail(ErrMalformed, "damaged RSA key in PKCS#8")
	case alg.Equal(oidEd25519):
		return nil, fail(ErrMalformed, "damaged Ed25519 key in PKCS#8")
	case alg.Equal(oidECDSA):
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil {
			return nil, fail(ErrUnsupported, "EC key without a named curve in PKCS#8")
		}
		if !isGoCurve(curve) {
			return nil, fail(ErrUnsupported, "EC curve %s", oidName(curve))
		}
		return nil, fail(ErrMalformed, "damaged EC key in PKCS#8")
	default:
		return nil, fail(ErrUnsupported, "key algorithm %s", oidName(alg))
	}
}

// parseSEC1 decodes an unencrypted SEC 1 EC key.
func parseSEC1(der []byte) (crypto.Signer, error) {
	key, err := x509.ParseECPrivateKey(der)
	if err == nil {
		return key, nil
	}
	var sec1 sec1PrivateKey
	if _, err := asn1.Unmarshal(der, &sec1); err == nil && len(sec1.Curve) > 0 && !isGoCurve(sec1.Curve) {
		return nil, fail(ErrUnsupported, "EC curve %s", oidName(sec1.Curve))
	}
	return nil, fail(ErrMalformed, "damaged SEC 1 EC key")
}

// parsePKCS1 decodes an unencrypted PKCS#1 RSA key.
func parsePKCS1(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS1PrivateKey(der)
	if err == nil {
		return key, nil
	}
	var prefix pkcs1Prefix
	if _, err := asn1.Unmarshal(der, &prefix); err == nil && prefix.Modulus != nil && prefix.Modulus.BitLen() < 1024 {
		// Go refuses RSA keys below 1024 bits; they are too weak for any certificate here anyway.
		return nil, fail(ErrUnsupported, "RSA key of %d bits", prefix.Modulus.BitLen())
	}
	return nil, fail(ErrMalformed, "damaged PKCS#1 RSA key")
}
