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
)

// ErrSignature is returned (wrapped) by the signature checks when a signature does not verify.
var ErrSignature = errors.New("signature does not verify")

// FileSHA256 streams the regular file at path through SHA-256 (firmware images are large; memory
// use does not grow with the file). Directories, devices, sockets and missing files are errors.
func FileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 64*1024)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// VerifyDigestSignature checks sig over a SHA-256 digest with the certificate's public key:
// RSA PKCS#1 v1.5, RSA-PSS (any salt length) or DER-encoded ECDSA, as OCPP's signed firmware
// update produces them.
func VerifyDigestSignature(cert *x509.Certificate, digest, sig []byte) error {
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
