package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrSignature is returned (wrapped) by the signature checks when a signature does not verify.
var ErrSignature = errors.New("signature does not verify")

// hashBufferSize is the read size of FileSHA256: large enough that a firmware image of a few
// hundred MiB takes few system calls, small enough that memory use stays flat.
const hashBufferSize = 256 * 1024

// FileSHA256 streams the regular file at path through SHA-256 (firmware images are large; memory
// use does not grow with the file). Directories, devices, FIFOs, sockets and missing files are
// errors, and none of them is read from: the path is checked before it is opened, and it is
// opened without blocking, so a FIFO put in place in between cannot hang the caller waiting for
// a writer (the descriptor is checked again after opening).
func FileSHA256(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, hashBufferSize)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

func notRegular(path string, fi os.FileInfo) error {
	kind := "not a regular file"
	switch t := fi.Mode().Type(); {
	case t&os.ModeDir != 0:
		kind = "a directory"
	case t&os.ModeNamedPipe != 0:
		kind = "a FIFO"
	case t&os.ModeSocket != 0:
		kind = "a socket"
	case t&os.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s is %s, not a regular file", path, kind)
}

// VerifyDigestSignature checks sig over a SHA-256 digest with the certificate's public key:
// RSA PKCS#1 v1.5, RSA-PSS (any salt length) or DER-encoded ECDSA, as OCPP's signed firmware
// update produces them.
func VerifyDigestSignature(cert *x509.Certificate, digest, sig []byte) error {
	if cert == nil {
		return errors.New("no signing certificate")
	}
	if len(digest) != sha256.Size {
		return fmt.Errorf("digest is %d bytes, a SHA-256 digest is %d", len(digest), sha256.Size)
	}
	if len(sig) == 0 {
		return fmt.Errorf("%w (empty signature)", ErrSignature)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil {
			return nil
		}
		if rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
			return nil
		}
		return fmt.Errorf("%w (RSA PKCS#1 v1.5 and PSS)", ErrSignature)
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(pub, digest, sig) {
			return nil
		}
		return fmt.Errorf("%w (ECDSA)", ErrSignature)
	case ed25519.PublicKey:
		return errors.New("Ed25519 signs messages, not digests; not supported for file signatures")
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
}
