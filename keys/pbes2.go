package keys

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"

	"github.com/youmark/pkcs8"
)

// Encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY") is decrypted by github.com/youmark/pkcs8. That
// library trusts its input: it panics on an IV or ciphertext of the wrong length, runs PBKDF2 for
// any iteration count and scrypt with any memory cost, and treats the GCM OIDs as CBC. A key file
// is untrusted input to a long-running service, so checkPBES2 reads the parameters (RFC 8018
// PBES2, RFC 7914 scrypt) first and lets through only what is well-formed and bounded.

// encryptedPrivateKeyInfo is RFC 5958's EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes2Params is RFC 8018's PBES2-params.
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is RFC 8018's PBKDF2-params with the salt given directly (the only form in use).
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      *big.Int                 `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// scryptParams is RFC 7914's scrypt-params.
type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                *big.Int `asn1:"optional"`
}

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
)

// pbes2Cipher is a PBES2 encryption scheme youmark/pkcs8 implements correctly.
type pbes2Cipher struct {
	name      string
	keySize   int
	blockSize int // also the IV size: all of them are CBC
}

var pbes2Ciphers = map[string]pbes2Cipher{
	"2.16.840.1.101.3.4.1.2":  {"AES-128-CBC", 16, 16},
	"2.16.840.1.101.3.4.1.22": {"AES-192-CBC", 24, 16},
	"2.16.840.1.101.3.4.1.42": {"AES-256-CBC", 32, 16},
	"1.2.840.113549.3.7":      {"DES-EDE3-CBC", 24, 8},
}

// pbkdf2PRFs are the PBKDF2 pseudo-random functions youmark/pkcs8 implements. An absent PRF means
// HMAC-SHA1 (the RFC 8018 default, written by OpenSSL 1.0).
var pbkdf2PRFs = map[string]string{
	"":                   "HMAC-SHA1",
	"1.2.840.113549.2.7": "HMAC-SHA1",
	"1.2.840.113549.2.9": "HMAC-SHA256",
}

// Bounds on the work a key file may ask for. OpenSSL writes 2048 PBKDF2 iterations and scrypt
// with N=16384, r=8, p=1 (16 MiB); the limits leave room for much stronger settings while keeping
// a hostile file from stalling the service or exhausting a charger's memory.
const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 64 << 20 // bytes, 128*r*N
	maxScryptN          = 1 << 20
	maxScryptR          = 32
	maxScryptP          = 16
)

// looksLikeEncryptedPKCS8 reports whether DER data is an EncryptedPrivateKeyInfo of any scheme.
func looksLikeEncryptedPKCS8(der []byte) bool {
	var info encryptedPrivateKeyInfo
	_, err := asn1.Unmarshal(der, &info)
	return err == nil && len(info.Algorithm.Algorithm) > 0
}

// checkPBES2 validates an EncryptedPrivateKeyInfo and returns a description of its scheme such as
// "PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC" for messages.
func checkPBES2(der []byte) (string, error) {
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return "", fail(ErrMalformed, "not a PKCS#8 EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return "", fail(ErrUnsupported, "encryption %s (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)",
			oidName(info.Algorithm.Algorithm))
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return "", fail(ErrMalformed, "bad PBES2 parameters")
	}

	scheme := params.EncryptionScheme.Algorithm
	ciph, ok := pbes2Ciphers[scheme.String()]
	if !ok {
		return "", fail(ErrUnsupported, "PBES2 cipher %s", oidName(scheme))
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) > 0 {
		return "", fail(ErrMalformed, "bad %s IV parameter", ciph.name)
	}
	if len(iv) != ciph.blockSize {
		return "", fail(ErrMalformed, "%s IV of %d bytes", ciph.name, len(iv))
	}
	if n := len(info.EncryptedData); n == 0 || n%ciph.blockSize != 0 {
		return "", fail(ErrMalformed, "%s ciphertext of %d bytes", ciph.name, n)
	}

	kdf, err := checkKDF(params.KeyDerivationFunc, ciph)
	if err != nil {
		return "", err
	}
	return "PBES2 " + kdf + " " + ciph.name, nil
}

// checkKDF validates the key derivation function of PBES2 and returns its name.
func checkKDF(alg pkix.AlgorithmIdentifier, ciph pbes2Cipher) (string, error) {
	switch {
	case alg.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return "", fail(ErrMalformed, "bad PBKDF2 parameters")
		}
		prf, ok := pbkdf2PRFs[prfKey(p.PRF)]
		if !ok {
			return "", fail(ErrUnsupported, "PBKDF2 with %s", oidName(p.PRF.Algorithm))
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations {
			return "", fail(ErrUnsupported, "PBKDF2 with %d iterations (allowed 1 to %d)", p.IterationCount, maxPBKDF2Iterations)
		}
		// youmark/pkcs8 does not read the optional key length, and would take the PRF that follows
		// it for absent; only RC2 ever needs the field, so refuse it rather than mis-derive.
		if p.KeyLength != nil {
			return "", fail(ErrUnsupported, "PBKDF2 with an explicit key length")
		}
		return "PBKDF2-" + prf, nil

	case alg.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return "", fail(ErrMalformed, "bad scrypt parameters")
		}
		n, r, par := p.CostParameter, p.BlockSize, p.ParallelizationParameter
		if n < 2 || n&(n-1) != 0 || n > maxScryptN || r < 1 || r > maxScryptR || par < 1 || par > maxScryptP ||
			128*r*n > maxScryptMemory {
			return "", fail(ErrUnsupported, "scrypt with N=%d r=%d p=%d (limits N<=%d, r<=%d, p<=%d, %d MiB)",
				n, r, par, maxScryptN, maxScryptR, maxScryptP, maxScryptMemory>>20)
		}
		if p.KeyLength != nil && (!p.KeyLength.IsInt64() || p.KeyLength.Int64() != int64(ciph.keySize)) {
			return "", fail(ErrMalformed, "scrypt key length does not fit %s", ciph.name)
		}
		return "scrypt", nil
	}
	return "", fail(ErrUnsupported, "PBES2 key derivation %s", oidName(alg.Algorithm))
}

func prfKey(prf pkix.AlgorithmIdentifier) string {
	if len(prf.Algorithm) == 0 {
		return ""
	}
	return prf.Algorithm.String()
}

// parseEncryptedPKCS8 decrypts and decodes an "ENCRYPTED PRIVATE KEY".
func parseEncryptedPKCS8(der, password []byte) (crypto.Signer, error) {
	scheme, err := checkPBES2(der)
	if err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return nil, fail(ErrPasswordRequired, "%s", scheme)
	}
	key, ok := decryptPKCS8(der, password)
	if !ok {
		// youmark/pkcs8 does not check the padding; a wrong password shows up as plaintext that is
		// no PKCS#8 key. A damaged ciphertext looks the same, and so, since the library hides the
		// plaintext, does a correctly decrypted key of a type Go cannot parse (Ed448, brainpool):
		// hence one error for all of them.
		return nil, fail(ErrWrongPassword, "%s", scheme)
	}
	return asSigner(key)
}

// decryptPKCS8 calls youmark/pkcs8 and reports only whether it worked: its error texts are not
// ours to show, and a panic in it must not take the service down (checkPBES2 should already have
// ruled out every input that makes it panic; this is the second line).
func decryptPKCS8(der, password []byte) (key any, ok bool) {
	defer func() {
		if recover() != nil {
			key, ok = nil, false
		}
	}()
	key, _, err := pkcs8.ParsePrivateKey(der, password)
	return key, err == nil && key != nil
}
