package keys

import "errors"

// The errors of this package. Callers test for them with errors.Is; the wrapped messages add
// where the problem is (PEM block number and type, cipher or algorithm name) but never key bytes
// or the password.
var (
	// ErrNoKey means the data holds no private key at all (no key PEM block and no DER key).
	ErrNoKey = errors.New("keys: no private key found")
	// ErrPasswordRequired means the key is encrypted and no (or an empty) password is configured.
	ErrPasswordRequired = errors.New("keys: private key is encrypted and no password is configured")
	// ErrWrongPassword means decrypting the key failed: the password is wrong or the encrypted
	// data is damaged; the two cannot be told apart.
	ErrWrongPassword = errors.New("keys: wrong password for encrypted private key")
	// ErrUnsupported means the data holds a key of a type or in a format this package does not
	// handle (for example a DSA or TPM key, or an unknown cipher).
	ErrUnsupported = errors.New("keys: unsupported private key type or format")
	// ErrMalformed means a key block of a supported format is damaged and cannot be decoded.
	ErrMalformed = errors.New("keys: malformed private key")
)
