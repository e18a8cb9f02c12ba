package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Key algorithms accepted in Spec.KeyAlgorithm and GenerateKey. The names are the ones OpenSSL and
// the EVerest configuration use.
const (
	KeyP256    = "P-256" // ISO 15118-2 and the default
	KeyP384    = "P-384"
	KeyP521    = "P-521"
	KeyRSA2048 = "RSA-2048" // common for OCPP CSMS certificates
	KeyRSA3072 = "RSA-3072"
)

// GenerateKey makes a new private key of the named algorithm; "" means KeyP256.
func GenerateKey(algorithm string) (crypto.Signer, error) {
	switch algorithm {
	case "", KeyP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("testpki: unknown key algorithm %q", algorithm)
}

// KeyAlgorithmOf names the algorithm of key's public key in the terms of GenerateKey, or returns
// "" when it is none of them.
func KeyAlgorithmOf(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyP256
		case elliptic.P384():
			return KeyP384
		case elliptic.P521():
			return KeyP521
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return KeyRSA2048
		case 3072:
			return KeyRSA3072
		}
	}
	return ""
}

// KeyPEM encodes the private key. Without a password it is an unencrypted PKCS#8 "PRIVATE KEY",
// the form OpenSSL 3 writes and every consumer reads. With a password it is a legacy encrypted
// "EC PRIVATE KEY" or "RSA PRIVATE KEY" (Proc-Type/DEK-Info headers, AES-128-CBC), the format of
// the reference library's test fixtures, so the store's key loader is exercised on it. A key that
// cannot be exported (a TPM or PKCS#11 signer) is an error.
func (i *Issued) KeyPEM(password string) ([]byte, error) {
	if i.Key == nil {
		return nil, errors.New("testpki: no private key")
	}
	if password == "" {
		der, err := x509.MarshalPKCS8PrivateKey(i.Key)
		if err != nil {
			return nil, fmt.Errorf("testpki: exporting key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}

	var (
		blockType string
		der       []byte
	)
	switch k := i.Key.(type) {
	case *ecdsa.PrivateKey:
		var err error
		if der, err = x509.MarshalECPrivateKey(k); err != nil {
			return nil, fmt.Errorf("testpki: exporting key: %w", err)
		}
		blockType = "EC PRIVATE KEY"
	case *rsa.PrivateKey:
		der = x509.MarshalPKCS1PrivateKey(k)
		blockType = "RSA PRIVATE KEY"
	default:
		return nil, fmt.Errorf("testpki: cannot export a %T as an encrypted key file", i.Key)
	}
	// EncryptPEMBlock is deprecated because legacy PEM encryption is unauthenticated and its key
	// derivation is weak. It is used on purpose: real EVerest trees and the reference fixtures hold
	// keys in exactly this format, and tests must produce them to prove the store reads them.
	block, err := x509.EncryptPEMBlock(rand.Reader, blockType, der, []byte(password), x509.PEMCipherAES128) //nolint:staticcheck // see above
	if err != nil {
		return nil, fmt.Errorf("testpki: encrypting key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}
