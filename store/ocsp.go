package store

import (
	"crypto/x509"

	"github.com/evsesec/evsesec/certs"
)

// ocspResponsePath returns the cached OCSP response of c, or "".
func (s *Store) ocspResponsePath(c *x509.Certificate, h certs.HashData) string { return "" }

// removeOCSPFor removes the cached OCSP responses of c stored next to certFile.
func (s *Store) removeOCSPFor(certFile string, c *x509.Certificate) {}

// sweepOCSP removes OCSP responses whose certificate is gone or that are past nextUpdate.
func (s *Store) sweepOCSP(v *caView, sets []*leafSet) []string { return nil }
