package keys

import (
	"bytes"
	"crypto"
	"fmt"
	"reflect"
	"strings"
)

// Kind says where a key file's private key lives: in the file itself, in a TPM 2.0 (the file
// holds a TPM-wrapped blob) or in a PKCS#11 token (the file holds a pkcs11: URI). The values
// are the strings used in configuration, in `ls` and in `doctor`.
type Kind string

// The kinds of key file.
const (
	// KindFile is a software key in the file (PKCS#8, encrypted PKCS#8, SEC 1 or PKCS#1 PEM, or
	// DER), read by FileBackend. Anything that is neither of the other kinds counts as one, so
	// a damaged file is reported by the file backend's parser.
	KindFile Kind = "file"
	// KindTPM is a "TSS2 PRIVATE KEY" PEM file (the TPM 2.0 key file format OpenSSL's tpm2
	// provider reads), read by the keys/tpm backend.
	KindTPM Kind = "tpm"
	// KindPKCS11 is a text file holding a pkcs11: URI (RFC 7512) naming a key in a token, read
	// by the keys/pkcs11 backend.
	KindPKCS11 Kind = "pkcs11"
)

// Kinds lists every Kind in a stable order, for help texts and configuration checks.
func Kinds() []Kind { return []Kind{KindFile, KindTPM, KindPKCS11} }

// String returns the kind's name, e.g. "tpm".
func (k Kind) String() string { return string(k) }

// ParseKind reads a kind name from configuration, ignoring case and surrounding space, and
// accepting "software" for file, "tpm2" for tpm and "hsm" for pkcs11; empty means file. An
// unknown name yields an error wrapping ErrUnsupported.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "file", "software", "":
		return KindFile, nil
	case "tpm", "tpm2":
		return KindTPM, nil
	case "pkcs11", "hsm":
		return KindPKCS11, nil
	}
	return "", fmt.Errorf("%w: key backend %q (want file, tpm or pkcs11)", ErrUnsupported, s)
}

// PEMTypeTPM is the PEM type of a TPM 2.0 key file (draft-bottomley-tpm2-keys), as OpenSSL's
// tpm2 provider and tpm2-tss-engine write it.
const PEMTypeTPM = "TSS2 PRIVATE KEY"

// URIScheme is the scheme (with its colon) a PKCS#11 key file's URI starts with.
const URIScheme = "pkcs11:"

// KindOf tells from a key file's content which backend owns it, without decoding the key:
//   - a "-----BEGIN TSS2 PRIVATE KEY-----" line anywhere in the file makes it KindTPM (even when
//     the block is damaged: the TPM backend then reports it as malformed, which says more than
//     the file backend's "unsupported key type" would);
//   - a first meaningful line (blank lines and lines starting with '#' are skipped) that starts
//     with "pkcs11:" (scheme case-insensitive) makes it KindPKCS11;
//   - everything else, including empty or unreadable data, is KindFile.
func KindOf(keyFile []byte) Kind {
	marker := []byte("-----BEGIN " + PEMTypeTPM + "-----")
	if i := bytes.Index(keyFile, marker); i == 0 || i > 0 && keyFile[i-1] == '\n' {
		return KindTPM
	}
	if _, ok := PKCS11URI(keyFile); ok {
		return KindPKCS11
	}
	return KindFile
}

// PKCS11URI returns the URI of a PKCS#11 key file: its first line that is neither blank nor a
// '#' comment, with surrounding space removed, when that line starts with "pkcs11:" (scheme
// case-insensitive). ok is false for any other content. The URI is returned as written; the
// keys/pkcs11 package parses it.
func PKCS11URI(keyFile []byte) (uri string, ok bool) {
	// Called for every key file when a leaf directory is read: it looks at the first line that
	// says anything and allocates only for a URI.
	rest := keyFile
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(line) > maxURILine {
			return "", false
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if len(line) >= len(URIScheme) && bytes.EqualFold(line[:len(URIScheme)], []byte(URIScheme)) {
			return string(line), true
		}
		return "", false
	}
	return "", false
}

// maxURILine bounds the line a key file's URI may be on (a longer line is no URI).
const maxURILine = 64 * 1024

// Deleter is the optional capability of a backend whose keys live outside their key files (a
// PKCS#11 token): DeleteKey removes the key that a key file names, so that deleting the file
// does not leave an orphan in the hardware. Backends whose key is entirely in the file (software,
// TPM-wrapped) do not implement it; deleting the file is enough.
type Deleter interface {
	DeleteKey(keyFile []byte) error
}

// Checker is the optional capability of a hardware backend to say whether it can be reached
// (device present, token found, PIN accepted), for `doctor`. It does not create or change keys.
type Checker interface {
	Check() error
}

// Backends routes key files to the backend of their Kind: it is the dispatcher the store uses
// to create, open, match and delete keys without knowing where they live. A nil field (or a
// typed nil pointer) means that kind is not configured (or, for PKCS#11, not built in): its key
// files fail with an error wrapping ErrUnsupported that says so. The zero value routes nothing;
// set File to FileBackend{...} for software keys.
type Backends struct {
	File   Backend
	TPM    Backend
	PKCS11 Backend
}

// For returns the backend of a kind, or an error wrapping ErrUnsupported when that kind has no
// backend.
func (b Backends) For(kind Kind) (Backend, error) {
	var be Backend
	switch kind {
	case KindFile:
		be = b.File
	case KindTPM:
		be = b.TPM
	case KindPKCS11:
		be = b.PKCS11
	default:
		return nil, fmt.Errorf("%w: key backend %q", ErrUnsupported, string(kind))
	}
	if isNil(be) {
		return nil, fmt.Errorf("%w: %s key, but no %s key backend is configured", ErrUnsupported, kind, kind)
	}
	return be, nil
}

// isNil reports whether a backend is nil, also when it is a typed nil pointer (a *tpm.Backend
// variable that was never opened, stored in the interface field).
func isNil(be Backend) bool {
	if be == nil {
		return true
	}
	v := reflect.ValueOf(be)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Close closes every configured backend that has a Close method (the hardware backends) and
// returns the first error.
func (b Backends) Close() error {
	var first error
	for _, be := range []Backend{b.File, b.TPM, b.PKCS11} {
		if c, ok := be.(interface{ Close() error }); ok && !isNil(be) {
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// CreateKey creates a key in the backend of the given kind.
func (b Backends) CreateKey(kind Kind, alg Algorithm) ([]byte, crypto.Signer, error) {
	be, err := b.For(kind)
	if err != nil {
		return nil, nil, err
	}
	return be.CreateKey(alg)
}

// Signer opens a key file with the backend of its kind (KindOf).
func (b Backends) Signer(keyFile []byte) (crypto.Signer, error) {
	be, err := b.For(KindOf(keyFile))
	if err != nil {
		return nil, err
	}
	return be.Signer(keyFile)
}

// PublicKey reads a key file's public key with the backend of its kind (KindOf).
func (b Backends) PublicKey(keyFile []byte) (crypto.PublicKey, error) {
	be, err := b.For(KindOf(keyFile))
	if err != nil {
		return nil, err
	}
	return be.PublicKey(keyFile)
}

// DeleteKey removes the hardware key a key file names when its backend implements Deleter. It
// does nothing (nil) for kinds whose key lives entirely in the file (software and TPM-wrapped
// keys), even when that kind has no backend. Call it before removing the file; on error keep the
// file, so that the hardware key is not orphaned.
func (b Backends) DeleteKey(keyFile []byte) error {
	kind := KindOf(keyFile)
	be, err := b.For(kind)
	if err != nil {
		if kind == KindPKCS11 {
			return err
		}
		return nil
	}
	if d, ok := be.(Deleter); ok {
		return d.DeleteKey(keyFile)
	}
	return nil
}
