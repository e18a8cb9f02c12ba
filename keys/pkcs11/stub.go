//go:build !pkcs11

package pkcs11

import (
	"crypto"

	"github.com/evsesec/evsesec/keys"
)

// Built reports whether PKCS#11 support is compiled in (build tag pkcs11).
const Built = false

// Backend stands in for the PKCS#11 backend in builds without the pkcs11 tag. Open never
// returns one; its methods fail with ErrNotBuilt, so that code using the package compiles the
// same way in both builds.
type Backend struct{}

var (
	_ keys.Backend = (*Backend)(nil)
	_ keys.Deleter = (*Backend)(nil)
	_ keys.Checker = (*Backend)(nil)
)

// Open fails with ErrNotBuilt: this binary was built without the pkcs11 tag.
func Open(cfg Config) (*Backend, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return nil, ErrNotBuilt
}

// String says that PKCS#11 is not built in.
func (b *Backend) String() string { return "PKCS#11 (not built in)" }

// Close does nothing.
func (b *Backend) Close() error { return nil }

// Check fails with ErrNotBuilt.
func (b *Backend) Check() error { return ErrNotBuilt }

// CreateKey fails with ErrNotBuilt.
func (b *Backend) CreateKey(keys.Algorithm) ([]byte, crypto.Signer, error) {
	return nil, nil, ErrNotBuilt
}

// Signer fails with ErrNotBuilt.
func (b *Backend) Signer([]byte) (crypto.Signer, error) { return nil, ErrNotBuilt }

// PublicKey fails with ErrNotBuilt.
func (b *Backend) PublicKey([]byte) (crypto.PublicKey, error) { return nil, ErrNotBuilt }

// DeleteKey fails with ErrNotBuilt.
func (b *Backend) DeleteKey([]byte) error { return ErrNotBuilt }
