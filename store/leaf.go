package store

import "github.com/evsesec/evsesec/certs"

// leafChains lists the station's SECC leaves as V2GCertificateChain entries.
func (s *Store) leafChains(v *caView) []HashDataChain { return nil }

// deleteLeaf deletes a station leaf named by hash data.
func (s *Store) deleteLeaf(v *caView, h certs.HashData) (DeleteResult, []Event) {
	return DeleteNotFound, nil
}
