package tlsconf

import (
	"errors"

	"github.com/evsesec/evsesec/store"
)

// ErrNoTLS is returned by OCPPClientConfig for OCPP security profiles 0 and 1, which connect
// without TLS (plain WebSocket); there is no tls.Config to give.
var ErrNoTLS = errors.New("tlsconf: OCPP security profiles 0 and 1 do not use TLS")

// ErrNoTrustAnchor is the verification failure when the trust domain a peer is checked against
// has no certificate installed (and the system's roots were not asked for).
var ErrNoTrustAnchor = errors.New("tlsconf: no trust anchor installed")

// LeafError says why no certificate could be presented: the handshake fails with it (from
// GetCertificate or GetClientCertificate) instead of going on without a certificate.
type LeafError struct {
	// Type is the leaf type asked for: store.LeafV2G (TLS 1.2) or store.LeafV2G20 (TLS 1.3) for
	// the SECC server, store.LeafCSMS for the OCPP client.
	Type store.LeafType
	// Status is the reason, in the interface's terms: NotFound (no leaf installed),
	// NotFoundValid (none valid now and trusted, e.g. all expired), PrivateKeyNotFound (no usable
	// key for the valid ones).
	Status store.InfoStatus
	// Err is the detail, when there is one: which certificate expired when, why a key did not load.
	Err error
}

// Error names the leaf type, the status with its meaning, and the detail.
func (e *LeafError) Error() string {
	msg := "tlsconf: no usable " + string(e.Type) + " leaf certificate: " + string(e.Status)
	switch e.Status {
	case store.InfoNotFound:
		msg += " (no leaf certificate installed)"
	case store.InfoNotFoundValid:
		msg += " (no leaf certificate is valid now and trusted)"
	case store.InfoPrivateKeyNotFound:
		msg += " (no usable private key for the valid leaf certificates)"
	case store.InfoRejected:
		msg += " (the station holds no leaves of this type)"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the detail.
func (e *LeafError) Unwrap() error { return e.Err }
