package tpm

import (
	"crypto"
	"crypto/rsa"
	"fmt"
	"io"
	"sync"
	"time"

	keyfile "github.com/foxboron/go-tpm-keyfiles"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/evsesec/evsesec/keys"
)

// Backend creates and uses keys in a TPM 2.0. It implements keys.Backend and keys.Checker.
// The key files it writes are "TSS2 PRIVATE KEY" PEM files; it reads those of OpenSSL's tpm2
// provider too.
//
// Open does not touch the TPM; each CreateKey, Check and Sign opens a connection and closes it
// when done, and operations of one Backend run one at a time. PublicKey never needs the TPM.
// A Backend is safe for concurrent use.
type Backend struct {
	cfg     Config
	ep      endpoint
	timeout time.Duration

	mu     sync.Mutex // serialises TPM operations and guards closed
	closed bool
}

var (
	_ keys.Backend = (*Backend)(nil)
	_ keys.Checker = (*Backend)(nil)
)

// Open checks cfg and returns a Backend for the TPM it names. It does not connect to the TPM,
// so it succeeds on a station whose TPM is missing; the first CreateKey or Sign then fails with
// ErrUnavailable (Check tells in advance).
func Open(cfg Config) (*Backend, error) {
	ep, err := cfg.parseEndpoint()
	if err != nil {
		return nil, err
	}
	if cfg.ParentHandle != 0 {
		if err := checkParent(cfg.ParentHandle); err != nil {
			return nil, err
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Backend{cfg: cfg, ep: ep, timeout: timeout}, nil
}

// Close marks the backend closed: later CreateKey, Check and Sign calls (also through signers
// handed out before) fail with ErrClosed. It waits for a running operation to end. PublicKey
// keeps working. Close is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// String describes where the TPM is ("/dev/tpmrm0", "tcp://127.0.0.1:2321"), for logs and
// doctor.
func (b *Backend) String() string { return "TPM at " + b.ep.String() }

// TCTI returns the TCTI string that points OpenSSL's tpm2 provider (TPM2OPENSSL_TCTI) and
// tpm2-tools (TPM2TOOLS_TCTI) at this backend's TPM.
func (b *Backend) TCTI() string { return b.ep.tcti() }

// withTPM runs f on a fresh connection, one operation at a time.
func (b *Backend) withTPM(f func(t transport.TPMCloser) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t, err := b.ep.open(b.timeout)
	if err != nil {
		return err
	}
	defer t.Close()
	return f(t)
}

// Check connects to the TPM and asks it for a few random bytes, proving that it is there and
// answers. It creates nothing.
func (b *Backend) Check() error {
	return b.withTPM(func(t transport.TPMCloser) error {
		if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(t); err != nil {
			return fmt.Errorf("%w: %s: GetRandom: %w", ErrTPM, b.ep, err)
		}
		return nil
	})
}

// CreateKey creates a key of the given algorithm inside the TPM under the configured parent and
// returns its key file and a signer for it. P-256, P-384, P-521, RSA-2048 and RSA-3072 are
// asked for; whether the TPM supports the larger ones depends on the chip (an unsupported one
// fails with ErrTPM).
func (b *Backend) CreateKey(alg keys.Algorithm) ([]byte, crypto.Signer, error) {
	tmpl, err := template(alg)
	if err != nil {
		return nil, nil, err
	}
	parent := b.cfg.parent()
	var created *tpm2.CreateResponse
	err = b.withTPM(func(t transport.TPMCloser) error {
		sess := keyfile.NewTPMSession(t)
		parentHandle, err := keyfile.GetParentHandle(sess, parent, []byte(b.cfg.OwnerAuth))
		if err != nil {
			return fmt.Errorf("%w: loading parent 0x%08x: %w", ErrTPM, uint32(parent), err)
		}
		// The owner hierarchy's storage key is transient and must go; a persistent parent
		// stays. FlushHandle knows which.
		if uint32(parent) == OwnerHierarchy {
			defer keyfile.FlushHandle(t, parentHandle)
		}
		created, err = tpm2.Create{
			ParentHandle: *parentHandle,
			InPublic:     tpm2.New2B(tmpl),
		}.Execute(t, sess.GetHMAC())
		if err != nil {
			return fmt.Errorf("%w: creating a %s key: %w", ErrTPM, alg, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	tk := keyfile.NewTPMKey(keyfile.OIDLoadableKey, created.OutPublic, created.OutPrivate,
		keyfile.WithParent(parent))
	keyFile := encode(tk)
	k, err := decode(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the TPM returned a key we cannot read back: %w", ErrTPM, err)
	}
	if k.alg != alg {
		return nil, nil, fmt.Errorf("%w: asked the TPM for a %s key, got %s", ErrTPM, alg, k.alg)
	}
	return keyFile, &signer{b: b, k: k}, nil
}

// Signer opens a TPM key file. It checks the file but does not touch the TPM; each Sign call
// loads the key into the TPM, signs and flushes it. Keys that need an authorization value or a
// policy are not supported (keys.ErrUnsupported).
func (b *Backend) Signer(keyFile []byte) (crypto.Signer, error) {
	k, err := decode(keyFile)
	if err != nil {
		return nil, err
	}
	switch {
	case !k.key.EmptyAuth:
		return nil, fmt.Errorf("%w: TPM key needs an authorization value", keys.ErrUnsupported)
	case len(k.key.Policy) > 0 || len(k.key.AuthPolicy) > 0:
		return nil, fmt.Errorf("%w: TPM key is bound to a policy", keys.ErrUnsupported)
	}
	pub, err := k.key.Pubkey.Contents()
	if err != nil || !pub.ObjectAttributes.SignEncrypt {
		return nil, fmt.Errorf("%w: TPM key is not a signing key", keys.ErrUnsupported)
	}
	return &signer{b: b, k: k}, nil
}

// PublicKey reads the public key from the key file's pubkey blob, without the TPM. It works on
// a closed backend and on a station without a TPM.
func (b *Backend) PublicKey(keyFile []byte) (crypto.PublicKey, error) {
	return PublicKey(keyFile)
}

// PublicKey reads the public key of a TPM key file from its pubkey blob. It needs neither a TPM
// nor a Backend.
func PublicKey(keyFile []byte) (crypto.PublicKey, error) {
	k, err := decode(keyFile)
	if err != nil {
		return nil, err
	}
	return k.pub, nil
}

// Parent returns the parent handle recorded in a TPM key file (0x40000001 for the owner
// hierarchy), for ls and doctor.
func Parent(keyFile []byte) (uint32, error) {
	k, err := decode(keyFile)
	if err != nil {
		return 0, err
	}
	return uint32(k.key.Parent), nil
}

// signer is a TPM key as a crypto.Signer.
type signer struct {
	b *Backend
	k *tpmKey
}

// Public returns the key's public key, read from its key file.
func (s *signer) Public() crypto.PublicKey { return s.k.pub }

// Sign signs a digest in the TPM: ECDSA (ASN.1 DER signature) for EC keys, RSASSA-PKCS1-v1_5
// or, with *rsa.PSSOptions, RSASSA-PSS for RSA keys. The digest must be SHA-256, SHA-384 or
// SHA-512. rand is not used; the TPM makes its own randomness.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var digestAlg tpm2.TPMAlgID
	switch opts.HashFunc() {
	case crypto.SHA256:
		digestAlg = tpm2.TPMAlgSHA256
	case crypto.SHA384:
		digestAlg = tpm2.TPMAlgSHA384
	case crypto.SHA512:
		digestAlg = tpm2.TPMAlgSHA512
	default:
		return nil, fmt.Errorf("%w: TPM signing with hash %v", keys.ErrUnsupported, opts.HashFunc())
	}
	if len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("tpm: digest of %d bytes for %v", len(digest), opts.HashFunc())
	}
	signAlg := s.k.key.KeyAlgo()
	if _, ok := opts.(*rsa.PSSOptions); ok {
		if signAlg != tpm2.TPMAlgRSA {
			return nil, fmt.Errorf("%w: PSS with a non-RSA key", keys.ErrUnsupported)
		}
		signAlg = tpm2.TPMAlgRSAPSS
	}
	var sig []byte
	err := s.b.withTPM(func(t transport.TPMCloser) error {
		var err error
		sig, err = keyfile.SignASN1(keyfile.NewTPMSession(t), s.k.key, []byte(s.b.cfg.OwnerAuth), nil, digest, digestAlg, signAlg)
		if err != nil {
			return fmt.Errorf("%w: signing: %w", ErrTPM, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sig, nil
}
