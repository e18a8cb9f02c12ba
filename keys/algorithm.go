package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
)

// Algorithm names a key type and size that the station can generate. The values are the strings
// used in configuration and on the command line.
type Algorithm string

// The algorithms ISO 15118 and OCPP certificates use. P-256 is what the reference generates for
// every CSR; the others can be chosen per leaf type.
const (
	P256    Algorithm = "P-256"
	P384    Algorithm = "P-384"
	P521    Algorithm = "P-521"
	RSA2048 Algorithm = "RSA-2048"
	RSA3072 Algorithm = "RSA-3072"
)

// Algorithms lists every Algorithm in a stable order, for help texts and configuration checks.
func Algorithms() []Algorithm {
	return []Algorithm{P256, P384, P521, RSA2048, RSA3072}
}

// algorithmAliases maps the lower-case spellings found in OpenSSL commands, in other tools'
// configuration and in the reference's documentation onto our names, so that an integrator can
// copy a value from any of them.
var algorithmAliases = map[string]Algorithm{
	"p-256": P256, "p256": P256, "prime256v1": P256, "secp256r1": P256, "nistp256": P256,
	"ec-p256": P256, "ec-p-256": P256, "ecdsa-p256": P256, "ecdsa-p-256": P256,

	"p-384": P384, "p384": P384, "secp384r1": P384, "nistp384": P384,
	"ec-p384": P384, "ec-p-384": P384, "ecdsa-p384": P384, "ecdsa-p-384": P384,

	"p-521": P521, "p521": P521, "secp521r1": P521, "nistp521": P521,
	"ec-p521": P521, "ec-p-521": P521, "ecdsa-p521": P521, "ecdsa-p-521": P521,

	"rsa-2048": RSA2048, "rsa2048": RSA2048, "rsa:2048": RSA2048,
	"rsa-3072": RSA3072, "rsa3072": RSA3072, "rsa:3072": RSA3072,
}

// ParseAlgorithm reads an algorithm name, ignoring case and accepting common aliases
// ("prime256v1", "secp384r1", "ec-p256", "rsa2048", "rsa:3072", with '_' for '-').
// An unknown name yields an error wrapping ErrUnsupported.
func ParseAlgorithm(s string) (Algorithm, error) {
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	if alg, ok := algorithmAliases[key]; ok {
		return alg, nil
	}
	return "", fmt.Errorf("%w: key algorithm %q (want one of %s)", ErrUnsupported, s, algorithmList())
}

func algorithmList() string {
	algs := Algorithms()
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// String returns the canonical name, e.g. "P-256".
func (a Algorithm) String() string { return string(a) }

// Generate makes a new software key of the given algorithm. rand is handed to the standard
// library's generators (nil means crypto/rand.Reader); since Go 1.26 they ignore it and always use
// a secure source unless GODEBUG=cryptocustomrand=1 is set, so it is not a way to get
// reproducible keys.
func Generate(alg Algorithm, random io.Reader) (crypto.Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	switch alg {
	case P256, P384, P521:
		return ecdsa.GenerateKey(alg.curve(), random)
	case RSA2048:
		return rsa.GenerateKey(random, 2048)
	case RSA3072:
		return rsa.GenerateKey(random, 3072)
	}
	return nil, fmt.Errorf("%w: key algorithm %q", ErrUnsupported, string(alg))
}

func (a Algorithm) curve() elliptic.Curve {
	switch a {
	case P256:
		return elliptic.P256()
	case P384:
		return elliptic.P384()
	case P521:
		return elliptic.P521()
	}
	return nil
}

// SignatureAlgorithm returns the X.509 signature algorithm to use with keys of this algorithm:
// ECDSA with the hash that matches the curve size (as ISO 15118-2 and OpenSSL's defaults pair
// them) and SHA-256 with PKCS#1 v1.5 for RSA. An unknown algorithm gives
// x509.UnknownSignatureAlgorithm.
func (a Algorithm) SignatureAlgorithm() x509.SignatureAlgorithm {
	switch a {
	case P256:
		return x509.ECDSAWithSHA256
	case P384:
		return x509.ECDSAWithSHA384
	case P521:
		return x509.ECDSAWithSHA512
	case RSA2048, RSA3072:
		return x509.SHA256WithRSA
	}
	return x509.UnknownSignatureAlgorithm
}

// AlgorithmOf tells which Algorithm a public key belongs to, so that a key read from a file can
// be signed with the right SignatureAlgorithm. Keys outside the Algorithm list (other curves, RSA
// sizes other than 2048 and 3072, Ed25519) give an error wrapping ErrUnsupported.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			break
		}
		switch k.Curve {
		case elliptic.P256():
			return P256, nil
		case elliptic.P384():
			return P384, nil
		case elliptic.P521():
			return P521, nil
		}
		return "", fmt.Errorf("%w: ECDSA curve %s", ErrUnsupported, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			break
		}
		switch k.Size() {
		case 2048 / 8:
			return RSA2048, nil
		case 3072 / 8:
			return RSA3072, nil
		}
		return "", fmt.Errorf("%w: RSA key of %d bits", ErrUnsupported, k.N.BitLen())
	}
	return "", fmt.Errorf("%w: public key type %T", ErrUnsupported, pub)
}
