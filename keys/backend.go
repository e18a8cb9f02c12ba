package keys

import "crypto"

// Backend creates and opens private keys of one kind (software file, TPM, PKCS#11).
//
// A key file's content is opaque to the caller: for the file backend it is the PEM key itself,
// for a hardware backend it will be a reference or a wrapped blob. The store only reads, writes
// and names these bytes; it never interprets them.
type Backend interface {
	// CreateKey makes a new key and returns the bytes to write into its key file and a signer for it.
	CreateKey(alg Algorithm) (keyFile []byte, signer crypto.Signer, err error)
	// Signer opens a key file's content.
	Signer(keyFile []byte) (crypto.Signer, error)
	// PublicKey reads only the public half of a key file (cheap, no hardware or decryption where avoidable).
	PublicKey(keyFile []byte) (crypto.PublicKey, error)
}
