//go:build pkcs11

package pkcs11

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/ThalesGroup/crypto11"

	"github.com/evsesec/evsesec/keys"
)

// Built reports whether PKCS#11 support is compiled in (build tag pkcs11).
const Built = true

// Backend creates and uses keys in one PKCS#11 token. It implements keys.Backend,
// keys.Deleter and keys.Checker; key files are pkcs11: URIs.
//
// Open does not load the module; the first operation does (and logs in), and the session stays
// until Close. A Backend is safe for concurrent use.
//
// PKCS#11 login state belongs to the process, not to a Backend: while one Backend is logged in
// to a token, a second Backend for the same token in the same process is let in whatever PIN
// it has. Configure one Backend per token.
type Backend struct {
	cfg Config

	mu     sync.Mutex // guards ctx and closed
	ctx    *crypto11.Context
	closed bool
}

var (
	_ keys.Backend = (*Backend)(nil)
	_ keys.Deleter = (*Backend)(nil)
	_ keys.Checker = (*Backend)(nil)
)

// Open checks cfg and returns a Backend for the token it names, without loading the module.
func Open(cfg Config) (*Backend, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Backend{cfg: cfg}, nil
}

// String describes the token, without the PIN.
func (b *Backend) String() string { return b.cfg.String() }

// context loads the module and logs in on first use. A failure is not remembered: the next
// call tries again (the token may have been plugged in meanwhile).
func (b *Backend) context() (*crypto11.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.ctx != nil {
		return b.ctx, nil
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path:       b.cfg.ModulePath,
		TokenLabel: b.cfg.TokenLabel,
		Pin:        b.cfg.PIN,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, b.cfg, err)
	}
	b.ctx = ctx
	return ctx, nil
}

// Close logs out and unloads the module (when no other Backend uses it). Signers handed out
// before stop working. Close is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.ctx == nil {
		return nil
	}
	err := b.ctx.Close()
	b.ctx = nil
	return err
}

// Check loads the module, finds the token and logs in, for doctor.
func (b *Backend) Check() error {
	_, err := b.context()
	return err
}

// CreateKey generates a key pair in the token (private key sensitive and not extractable)
// with a random 16-byte CKA_ID and the label "evsesec-" followed by the ID in hex, and returns
// a key file holding its URI.
func (b *Backend) CreateKey(alg keys.Algorithm) ([]byte, crypto.Signer, error) {
	var curve elliptic.Curve
	bits := 0
	switch alg {
	case keys.P256:
		curve = elliptic.P256()
	case keys.P384:
		curve = elliptic.P384()
	case keys.P521:
		curve = elliptic.P521()
	case keys.RSA2048:
		bits = 2048
	case keys.RSA3072:
		bits = 3072
	default:
		return nil, nil, fmt.Errorf("%w: key algorithm %q", keys.ErrUnsupported, string(alg))
	}
	ctx, err := b.context()
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, err
	}
	label := "evsesec-" + hex.EncodeToString(id)
	var s crypto11.Signer
	if curve != nil {
		s, err = ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label), curve)
	} else {
		s, err = ctx.GenerateRSAKeyPairWithLabel(id, []byte(label), bits)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: generating a %s key in %s: %w", ErrToken, alg, b.cfg, err)
	}
	u := URI{Token: b.cfg.TokenLabel, Object: label, ID: id, Type: "private"}
	return u.KeyFile(), s, nil
}

// find looks up the key pair a key file names. It must be exactly one private key with its
// public half in the configured token.
func (b *Backend) find(keyFile []byte) (crypto11.Signer, error) {
	u, err := ParseKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Token != "" && u.Token != b.cfg.TokenLabel:
		return nil, fmt.Errorf("%w: key is in token %q, this backend uses token %q", keys.ErrUnsupported, u.Token, b.cfg.TokenLabel)
	case u.Type != "" && u.Type != "private":
		return nil, fmt.Errorf("%w: URI names a %q object, not a private key", keys.ErrUnsupported, u.Type)
	case u.Object == "" && len(u.ID) == 0:
		return nil, fmt.Errorf("%w: pkcs11 URI names no object (needs object= or id=)", keys.ErrMalformed)
	}
	ctx, err := b.context()
	if err != nil {
		return nil, err
	}
	var id, label []byte
	if len(u.ID) > 0 {
		id = u.ID
	}
	if u.Object != "" {
		label = []byte(u.Object)
	}
	found, err := ctx.FindKeyPairs(id, label)
	if err != nil {
		return nil, fmt.Errorf("%w: looking up %s: %w", ErrToken, u, err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s holds no key pair %s", keys.ErrNoKey, b.cfg, u)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %s matches %d key pairs in %s", keys.ErrUnsupported, u, len(found), b.cfg)
}

// Signer opens the key a key file names. Signing happens in the token: ECDSA (DER signature),
// RSA PKCS#1 v1.5 or, with *rsa.PSSOptions, RSA-PSS.
func (b *Backend) Signer(keyFile []byte) (crypto.Signer, error) {
	return b.find(keyFile)
}

// PublicKey reads the public half of the key a key file names from the token (which needs the
// module and a login).
func (b *Backend) PublicKey(keyFile []byte) (crypto.PublicKey, error) {
	s, err := b.find(keyFile)
	if err != nil {
		return nil, err
	}
	return s.Public(), nil
}

// DeleteKey destroys the private and public key objects a key file names. A key that is
// already gone is not an error, so that removing a stale key file can go ahead.
func (b *Backend) DeleteKey(keyFile []byte) error {
	s, err := b.find(keyFile)
	if err != nil {
		if errors.Is(err, keys.ErrNoKey) {
			return nil
		}
		return err
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("%w: deleting a key: %w", ErrToken, err)
	}
	return nil
}
