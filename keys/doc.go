// Package keys owns the station's private keys: generating them, encoding them into key files,
// decoding key files (plain, password-encrypted PKCS#8 and OpenSSL's legacy encrypted PEM) and
// matching keys to certificates by public key.
//
// Every key is handed out as a crypto.Signer so that callers (CSR signing, TLS) never care where
// the key lives. Where it lives is a Backend: the software file backend is in file.go; the TPM 2.0
// and PKCS#11 backends will each get their own file or package and implement the same interface.
//
// Key material never appears in an error, a log line or a panic message: errors carry only the
// sentinel (ErrNoKey, ErrPasswordRequired, ErrWrongPassword, ErrUnsupported, ErrMalformed) and the
// position and type of the PEM block they concern.
//
// keys imports only the standard library, golang.org/x/crypto and github.com/youmark/pkcs8; it
// must not import store, api or any transport.
package keys
