package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/youmark/pkcs8"
)

// The PEM block types a key file may hold. OpenSSL writes the first two today; the other two are
// the "traditional" formats older tools and the reference's own test fixtures still use.
const (
	pemPKCS8          = "PRIVATE KEY"
	pemEncryptedPKCS8 = "ENCRYPTED PRIVATE KEY"
	pemSEC1           = "EC PRIVATE KEY"
	pemPKCS1          = "RSA PRIVATE KEY"
)

// FileBackend keeps software keys in PEM files, the format the reference and every OpenSSL-based
// consumer (EvseV2G, libocpp, mosquitto) read.
type FileBackend struct {
	// Password encrypts the keys CreateKey writes and decrypts encrypted key files. Empty means
	// keys are written unencrypted, and encrypted files fail with ErrPasswordRequired.
	Password []byte
}

var _ Backend = FileBackend{}

// CreateKey generates a key of the given algorithm and encodes it with MarshalPEM using the
// backend's password.
func (b FileBackend) CreateKey(alg Algorithm) ([]byte, crypto.Signer, error) {
	signer, err := Generate(alg, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyFile, err := MarshalPEM(signer, b.Password)
	if err != nil {
		return nil, nil, err
	}
	return keyFile, signer, nil
}

// Signer decodes a key file with ParsePEM using the backend's password.
func (b FileBackend) Signer(keyFile []byte) (crypto.Signer, error) {
	return ParsePEM(keyFile, b.Password)
}

// PublicKey returns the public half of a key file. A software key file holds no separately
// readable public key once encrypted, so this decodes (and if need be decrypts) the whole key.
func (b FileBackend) PublicKey(keyFile []byte) (crypto.PublicKey, error) {
	signer, err := ParsePEM(keyFile, b.Password)
	if err != nil {
		return nil, err
	}
	return signer.Public(), nil
}

// writeOpts are the PBES2 parameters of the keys we encrypt. They are spelled out instead of
// relying on pkcs8.DefaultOpts because that is a mutable package variable. PBKDF2-HMAC-SHA256
// with AES-256-CBC is what OpenSSL 3 itself writes (with AES-128 and 2048 iterations); the
// iteration count is higher than OpenSSL's but still cheap enough to decrypt on a charger's
// small CPU, and the 16-byte salt follows newer OpenSSL releases.
func writeOpts() *pkcs8.Opts {
	return &pkcs8.Opts{
		Cipher: pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{
			SaltSize:       16,
			IterationCount: 10000,
			HMACHash:       crypto.SHA256,
		},
	}
}

// MarshalPEM encodes a software key as a PEM key file. Without a password (nil or empty) it writes
// an unencrypted "PRIVATE KEY" (PKCS#8) block; it never writes an encrypted key under an empty
// password, which the reference does and which consumers such as mosquitto then cannot load.
// With a password it writes an "ENCRYPTED PRIVATE KEY" block (PKCS#8, PBES2 with
// PBKDF2-HMAC-SHA256 and AES-256-CBC) that `openssl pkey -passin` reads.
//
// Only ECDSA, RSA and Ed25519 keys held in memory can be encoded; a hardware signer gives an
// error wrapping ErrUnsupported.
func MarshalPEM(key crypto.Signer, password []byte) ([]byte, error) {
	switch key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: cannot write a %T into a key file", ErrUnsupported, key)
	}
	if len(password) == 0 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("keys: encoding %T as PKCS#8: %w", key, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
	}
	der, err := pkcs8.MarshalPrivateKey(key, password, writeOpts())
	if err != nil {
		return nil, fmt.Errorf("keys: encrypting %T as PKCS#8: %w", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPKCS8, Bytes: der}), nil
}

// ParsePEM decodes a key file, as OpenSSL's PEM_read_bio_PrivateKey would with the same
// password. It walks the PEM blocks and skips those that are not keys, so a file holding a
// certificate followed by its key loads; the first block of a supported key type decides the
// result. Supported are "PRIVATE KEY" (PKCS#8), "ENCRYPTED PRIVATE KEY" (PKCS#8 with PBES2:
// PBKDF2 with HMAC-SHA1 or HMAC-SHA256, or scrypt; AES-CBC or 3DES-CBC), "EC PRIVATE KEY" (SEC1)
// and "RSA PRIVATE KEY" (PKCS#1), each also with OpenSSL's legacy "Proc-Type: 4,ENCRYPTED" and
// "DEK-Info" headers. Data without any PEM marker is tried as a DER key in those formats.
//
// An unencrypted key loads whatever password is given. A nil or empty password never decrypts.
// Failures wrap ErrNoKey, ErrPasswordRequired, ErrWrongPassword, ErrUnsupported or ErrMalformed;
// their messages never contain key bytes or the password.
func ParsePEM(data []byte, password []byte) (crypto.Signer, error) {
	if !bytes.Contains(data, []byte("-----BEGIN ")) {
		signer, err := parseDER(data, password)
		return locate(signer, err, "DER data")
	}
	var unsupported error
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case pemPKCS8, pemEncryptedPKCS8, pemSEC1, pemPKCS1:
			signer, err := parseBlock(block, password)
			return locate(signer, err, fmt.Sprintf("PEM block %d (%s)", n, block.Type))
		}
		// Keep looking past other keys too: a later block may hold one we can read. But remember
		// that a key was there, so that a file holding only, say, a TPM or DSA key is reported as
		// unsupported rather than as holding no key.
		if unsupported == nil && strings.HasSuffix(block.Type, "PRIVATE KEY") {
			unsupported = &parseError{kind: ErrUnsupported, where: fmt.Sprintf("PEM block %d", n),
				detail: fmt.Sprintf("%q keys are not handled by the file backend", block.Type)}
		}
	}
	if unsupported != nil {
		return nil, unsupported
	}
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return nil, fail(ErrMalformed, "a private key PEM block could not be decoded (bad base64 or missing END line)")
	}
	return nil, fail(ErrNoKey, "no private key PEM block")
}

// parseError is a failure to decode one key. It is built only from a sentinel and strings this
// package composes, never from an underlying library error, so that no key byte can end up in a
// message.
type parseError struct {
	kind   error  // one of the package's sentinels
	where  string // which part of the file, filled in by ParsePEM
	detail string // non-secret detail: a cipher, algorithm or structure name
}

func (e *parseError) Error() string {
	msg := e.kind.Error()
	if e.where != "" {
		msg += ": " + e.where
	}
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}

func (e *parseError) Unwrap() error { return e.kind }

func fail(kind error, format string, args ...any) error {
	return &parseError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// locate adds where a failure happened to a parseError.
func locate(signer crypto.Signer, err error, where string) (crypto.Signer, error) {
	var pe *parseError
	if errors.As(err, &pe) && pe.where == "" {
		pe.where = where
	}
	return signer, err
}

// parseBlock decodes one PEM block of a supported key type, removing legacy PEM encryption first.
func parseBlock(block *pem.Block, password []byte) (crypto.Signer, error) {
	if !isLegacyEncrypted(block) {
		return parseKeyDER(block.Type, block.Bytes, password)
	}
	cipherName, err := legacyCipher(block)
	if err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return nil, fail(ErrPasswordRequired, "legacy PEM encryption %s", cipherName)
	}
	// x509.DecryptPEMBlock is deprecated because the legacy format has no integrity check and a
	// weak key derivation. We only read such files, never write them, and must read them: the
	// reference's fixtures and many deployed chargers' keys are in exactly this format.
	der, err := x509.DecryptPEMBlock(block, password) //nolint:staticcheck // SA1019: reading legacy keys is required, see above.
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, fail(ErrWrongPassword, "legacy PEM encryption %s", cipherName)
	}
	if err != nil {
		return nil, fail(ErrMalformed, "legacy PEM encryption %s: bad IV or data length", cipherName)
	}
	signer, err := parseKeyDER(block.Type, der, password)
	if errors.Is(err, ErrMalformed) {
		// The padding check lets a wrong password through about once in 256 tries; the garbage
		// it produces then fails to decode.
		return nil, fail(ErrWrongPassword, "legacy PEM encryption %s", cipherName)
	}
	return signer, err
}

// isLegacyEncrypted reports whether a block carries OpenSSL's pre-PKCS#8 encryption headers.
// Either header alone is enough: a block that claims encryption must not be parsed as plain DER.
func isLegacyEncrypted(block *pem.Block) bool {
	_, dek := block.Headers["DEK-Info"]
	return dek || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED")
}

// legacyCiphers are the DEK-Info ciphers x509.DecryptPEMBlock knows; these are what OpenSSL's
// `-des`, `-des3`, `-aes128`, `-aes192` and `-aes256` write.
var legacyCiphers = map[string]bool{
	"DES-CBC": true, "DES-EDE3-CBC": true, "AES-128-CBC": true, "AES-192-CBC": true, "AES-256-CBC": true,
}

// legacyCipher checks the DEK-Info header before any password is involved, so that an unknown
// cipher is reported as unsupported even when no password is configured.
func legacyCipher(block *pem.Block) (string, error) {
	dek, ok := block.Headers["DEK-Info"]
	if !ok {
		return "", fail(ErrMalformed, "Proc-Type says ENCRYPTED but there is no DEK-Info header")
	}
	name, _, ok := strings.Cut(dek, ",")
	if !ok {
		return "", fail(ErrMalformed, "DEK-Info header without IV")
	}
	name = strings.TrimSpace(name)
	if !legacyCiphers[name] {
		return "", fail(ErrUnsupported, "legacy PEM encryption %q", name)
	}
	return name, nil
}

// parseKeyDER decodes the (decrypted) DER of a block by its PEM type.
func parseKeyDER(blockType string, der, password []byte) (crypto.Signer, error) {
	switch blockType {
	case pemPKCS8:
		return parsePKCS8(der)
	case pemEncryptedPKCS8:
		return parseEncryptedPKCS8(der, password)
	case pemSEC1:
		return parseSEC1(der)
	case pemPKCS1:
		return parsePKCS1(der)
	}
	return nil, fail(ErrUnsupported, "PEM type %q", blockType)
}

// parseDER decodes a key file that has no PEM marker. The four DER formats differ in the types
// of their first two elements, so trying them in turn cannot mistake one for another.
func parseDER(data, password []byte) (crypto.Signer, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, fail(ErrNoKey, "empty")
	case looksLikePKCS8(data):
		return parsePKCS8(data)
	case looksLikeEncryptedPKCS8(data):
		return parseEncryptedPKCS8(data, password)
	case looksLikeSEC1(data):
		return parseSEC1(data)
	}
	if key, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return key, nil
	}
	return nil, fail(ErrNoKey, "neither PEM nor a DER private key")
}

// asSigner turns what the x509 parsers return into a crypto.Signer. X25519 and X448 keys parse as
// PKCS#8 but cannot sign.
func asSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fail(ErrUnsupported, "%T keys cannot sign", key)
}
