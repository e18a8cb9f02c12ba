// Package tpm keeps the station's private keys in a TPM 2.0. A key is created inside the TPM
// under a parent (by default the owner hierarchy's storage key, as OpenSSL's tpm2 provider
// does) and leaves it only wrapped: the key file is a "TSS2 PRIVATE KEY" PEM
// (draft-bottomley-tpm2-keys) holding the TPM's public and encrypted private blobs, which
// OpenSSL's tpm2 provider, EvseV2G and libocpp load directly. The key file never holds the key
// in the clear and is useless without the TPM that made it.
//
// The public key is read from the key file's pubkey blob, so PublicKey (and with it key to
// certificate matching, ls and GC) works without any TPM access. Creating keys and signing talk
// to the TPM through /dev/tpmrm0 (the kernel resource manager) by default, or through a TCP or
// Unix socket (swtpm) when configured. A connection is opened per operation and closed after
// it: a TPM simulator serves one client at a time, and the OpenSSL-based consumers of the same
// keys must get their turn.
//
// Key files are written without the optional description field: Debian 12's tpm2-openssl 1.1.1
// rejects files that carry it.
//
// tpm imports keys (for Algorithm, Backend and the error sentinels), go-tpm and go-tpm-keyfiles;
// it must not import store, api or any transport.
package tpm
