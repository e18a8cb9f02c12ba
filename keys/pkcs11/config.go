package pkcs11

import (
	"errors"
	"fmt"

	"github.com/evsesec/evsesec/keys"
)

// Config says which PKCS#11 module and token hold the keys.
type Config struct {
	// ModulePath is the PKCS#11 module (shared library), e.g.
	// /usr/lib/softhsm/libsofthsm2.so or a secure element vendor's library.
	ModulePath string
	// TokenLabel selects the token by its label; keys are created in it, and key files naming
	// another token are refused.
	TokenLabel string
	// PIN is the user PIN that logs in to the token.
	PIN string
}

// check validates the fields Open needs.
func (c Config) check() error {
	switch {
	case c.ModulePath == "":
		return errors.New("pkcs11: no module path configured")
	case c.TokenLabel == "":
		return errors.New("pkcs11: no token label configured")
	}
	return nil
}

// String describes the token for logs and doctor, without the PIN.
func (c Config) String() string {
	return fmt.Sprintf("PKCS#11 token %q via %s", c.TokenLabel, c.ModulePath)
}

// The errors of this package beyond keys' sentinels (keys.ErrMalformed for a key file that is
// not a valid pkcs11: URI, keys.ErrNoKey for a key the token does not hold, keys.ErrUnsupported
// for a key in another token or of an unusable type). Callers test for them with errors.Is.
var (
	// ErrNotBuilt means the binary was built without the pkcs11 build tag. It wraps
	// keys.ErrUnsupported.
	ErrNotBuilt = fmt.Errorf("%w: PKCS#11 support not built in (rebuild with -tags pkcs11 and cgo)", keys.ErrUnsupported)
	// ErrUnavailable means the module could not be loaded, the token was not found or the PIN
	// was refused.
	ErrUnavailable = errors.New("pkcs11: token not available")
	// ErrToken means the token was reached but refused or failed an operation.
	ErrToken = errors.New("pkcs11: token operation failed")
	// ErrClosed means the backend was used after Close.
	ErrClosed = errors.New("pkcs11: backend is closed")
)
