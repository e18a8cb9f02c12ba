package tpm

import "errors"

// The errors of this package beyond keys' sentinels (keys.ErrMalformed for a damaged key file,
// keys.ErrUnsupported for a key this backend cannot use, keys.ErrNoKey for a file without a TPM
// key). Callers test for them with errors.Is.
var (
	// ErrUnavailable means the TPM could not be reached: the device is missing or not
	// accessible, or nothing listens on the configured socket. A use_tpm request on a station
	// without a TPM fails with it.
	ErrUnavailable = errors.New("tpm: TPM not available")
	// ErrTPM means the TPM was reached but refused or failed a command (unsupported curve or key
	// size, a key file made by another TPM, wrong parent authorization, ...).
	ErrTPM = errors.New("tpm: TPM command failed")
	// ErrClosed means the backend was used after Close.
	ErrClosed = errors.New("tpm: backend is closed")
)
