package store

import (
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/keys/pkcs11"
	"github.com/evsesec/evsesec/keys/tpm"
)

// keyBackends routes the store's key files to the backend of their kind: software files,
// TPM-wrapped keys (TSS2 PRIVATE KEY files) and PKCS#11 URIs. It is built once at Open; the
// hardware backends connect only when a key is created or used.
type keyBackends struct {
	keys.Backends
	// tpmErr and pkcs11Err say why a hardware backend is not available, for errors and doctor.
	tpmErr, pkcs11Err error
}

// openKeyBackends builds the backends the config asks for. A TPM is used when tpm_address or
// tpm_device is set, or when the default device exists; PKCS#11 when pkcs11_module is set.
func openKeyBackends(cfg Config) *keyBackends {
	kb := &keyBackends{Backends: keys.Backends{File: keys.FileBackend{Password: []byte(cfg.PrivateKeyPassword)}}}
	tcfg := tpm.Config{Device: cfg.TPMDevice, Address: cfg.TPMAddress, OwnerAuth: cfg.TPMOwnerAuth}
	if cfg.TPMParentHandle != "" {
		h, err := tpm.ParseHandle(cfg.TPMParentHandle)
		if err != nil {
			kb.tpmErr = fmt.Errorf("tpm_parent_handle: %w", err)
		}
		tcfg.ParentHandle = h
	}
	if kb.tpmErr == nil {
		switch _, statErr := os.Stat(tpm.DefaultDevice); {
		case cfg.TPMAddress == "" && cfg.TPMDevice == "" && statErr != nil:
			kb.tpmErr = fmt.Errorf("%w: no TPM configured (tpm_address, tpm_device) and %s does not exist", ErrNoTPM, tpm.DefaultDevice)
		default:
			b, err := tpm.Open(tcfg)
			if err != nil {
				kb.tpmErr = err
			} else {
				kb.TPM = b
			}
		}
	}
	if cfg.PKCS11Module != "" {
		b, err := pkcs11.Open(pkcs11.Config{ModulePath: cfg.PKCS11Module, TokenLabel: cfg.PKCS11Token, PIN: cfg.PKCS11PIN})
		if err != nil {
			kb.pkcs11Err = err
		} else {
			kb.PKCS11 = b
		}
	} else {
		kb.pkcs11Err = errors.New("no PKCS#11 module configured (pkcs11_module)")
	}
	return kb
}

// PublicKey reads the public key of a key file. A TPM key file carries its public key, so it is
// read without a TPM: matching and GC work even when the TPM is not reachable.
func (kb *keyBackends) PublicKey(keyFile []byte) (crypto.PublicKey, error) {
	if keys.KindOf(keyFile) == keys.KindTPM && kb.TPM == nil {
		return tpm.PublicKey(keyFile)
	}
	return kb.Backends.PublicKey(keyFile)
}

// create makes a key of the given kind, or explains why that kind is not available.
func (kb *keyBackends) create(kind keys.Kind, alg keys.Algorithm) ([]byte, crypto.Signer, error) {
	switch {
	case kind == keys.KindTPM && kb.TPM == nil:
		return nil, nil, kb.tpmErr
	case kind == keys.KindPKCS11 && kb.PKCS11 == nil:
		return nil, nil, kb.pkcs11Err
	}
	return kb.Backends.CreateKey(kind, alg)
}

// keyFileExt is the extension of a new key file of kind: .tkey for TPM keys (the reference's
// name for provider keys), .key otherwise.
func keyFileExt(kind keys.Kind) string {
	if kind == keys.KindTPM {
		return ".tkey"
	}
	return ".key"
}

// backendFor returns the configured key backend of a leaf type.
func (c Config) backendFor(lt LeafType) keys.Kind {
	name := c.SECCKeyBackend
	if lt == LeafCSMS {
		name = c.CSMSKeyBackend
	}
	k, err := keys.ParseKind(name)
	if err != nil {
		return keys.KindFile
	}
	return k
}

// removeKeyFile deletes a key: first the hardware object it names (PKCS#11), then the file. When
// the hardware key cannot be deleted the file is kept, so the key is never orphaned in the token.
func (s *Store) removeKeyFile(path string) error {
	if data, err := s.fs.ReadFile(path); err == nil {
		if err := s.keyBackends.DeleteKey(data); err != nil {
			return fmt.Errorf("delete hardware key of %s: %w", path, err)
		}
	}
	s.keys.mu.Lock()
	delete(s.keys.files, path)
	s.keys.mu.Unlock()
	return removeDurable(s.fs, path)
}

// Close releases the hardware key backends and the directory watch, and removes the private
// directory of derived files (paths get_verify_file and get_verify_location handed out for a
// read-only tree stop working then).
func (s *Store) Close() error {
	s.watchMu.Lock()
	if s.watch != nil {
		s.watch.close()
	}
	s.watchMu.Unlock()
	err := s.private.remove()
	if kerr := s.keyBackends.Close(); kerr != nil {
		err = kerr
	}
	return err
}
