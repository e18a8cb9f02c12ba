// Package pkcs11 keeps the station's private keys in a PKCS#11 token (a secure element, an HSM,
// SoftHSM2 in tests). The key never leaves the token; its key file holds only a pkcs11: URI
// (RFC 7512) naming the token and the object, so that the store can keep naming keys by file
// and OpenSSL-based consumers can be handed the same URI (libp11's pkcs11 engine reads it).
//
// The backend itself talks to the token through github.com/ThalesGroup/crypto11, which needs
// cgo, so it is built only with the build tag pkcs11 (`go build -tags pkcs11`). Without the tag
// the package still builds: URI and key-file parsing work, and Open fails with ErrNotBuilt, so
// that callers compile the same way in both builds and the default binary stays static.
//
// The module path, token label and user PIN come from Config; a PIN or module path inside a
// key file's URI is ignored, and the key files this package writes never hold a PIN.
//
// pkcs11 imports keys (for Algorithm, Backend and the error sentinels) and, with the tag,
// crypto11; it must not import store, api or any transport.
package pkcs11
