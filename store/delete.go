package store

import (
	"crypto/x509"

	"github.com/evsesec/evsesec/certs"
)

// DeleteCertificate deletes the certificate named by OCPP hash data (matched case-insensitively,
// with the algorithm the caller chose).
//
// A CA certificate is removed from every domain that holds it, together with what it issued in
// that domain; a certificate that another remaining CA also issued (a cross-signed sub-CA) stays.
// Only the files holding those certificates are touched, and only those certificates are cut out
// of them. Station leaves under a deleted CA stay (untrusted, no longer handed out) and stay
// nameable by their hash data: when their issuer was only in a bundle, it is first kept in a new
// chain file of the leaf (see keepLeavesNamed). A station leaf is deleted as a unit (see
// deleteLeaf). Results: Accepted, NotFound when
// nothing matches, Failed when a write failed or the certificate is the station's current CSMS
// leaf (OCPP 2.0.1 M04.FR.06).
func (s *Store) DeleteCertificate(h certs.HashData) DeleteResult {
	if h.Validate() != nil {
		s.log.Warn("delete_certificate: invalid hash data", "err", h.Validate())
		return DeleteNotFound
	}
	return write(s, "delete_certificate", DeleteFailed, func() (DeleteResult, []Event) {
		return s.deleteCertificate(h)
	})
}

func (s *Store) deleteCertificate(h certs.HashData) (DeleteResult, []Event) {
	v := s.readCAsExact()
	found, failed := false, false
	var events []Event
	drops := map[string]map[certs.Fingerprint]bool{} // per bundle path (several domains may share one)
	var order []CAType
	for _, t := range CATypes {
		b := v.bundles[t]
		pool := v.domainPool(t)
		var targets []*x509.Certificate
		for _, c := range pool.Certificates() {
			if hc, ok := v.all.HashData(c, h.Algorithm); ok && hc.Equal(h) {
				targets = append(targets, c)
			}
		}
		if len(targets) == 0 {
			continue
		}
		found = true
		events = append(events, Event{Kind: EventDelete, Operation: OperationDeleted, CAType: t, Path: b.path})
		if drops[b.path] != nil {
			continue
		}
		drops[b.path] = cascade(pool, targets)
		order = append(order, t)
	}
	if !found {
		return s.deleteLeaf(v, h)
	}
	if err := s.keepLeavesNamed(v, drops); err != nil {
		return DeleteFailed, nil
	}
	for _, t := range order {
		b := v.bundles[t]
		drop := drops[b.path]
		edited := false
		for _, f := range b.files {
			changed, err := s.removeFromFile(f, drop, b.isDir)
			if err != nil {
				s.log.Error("delete_certificate: write failed", "domain", t, "err", err)
				failed = true
			} else if changed {
				s.log.Info("deleted CA certificates from bundle", "domain", t, "path", f.path, "count", countIn(f, drop))
			}
			edited = edited || changed || err != nil
		}
		if b.isDir && edited {
			s.refreshDerived(b.path)
		}
	}
	if failed {
		return DeleteFailed, nil
	}
	return DeleteAccepted, events
}

// cascade returns the fingerprints to delete: the targets and every certificate of the pool
// whose issuers are all being deleted. A certificate with another surviving issuer (cross-signed)
// is kept.
func cascade(pool *certs.Pool, targets []*x509.Certificate) map[certs.Fingerprint]bool {
	drop := map[certs.Fingerprint]bool{}
	for _, t := range targets {
		drop[certs.FingerprintOf(t)] = true
	}
	for changed := true; changed; {
		changed = false
		for _, c := range pool.Certificates() {
			fp := certs.FingerprintOf(c)
			if drop[fp] || pool.IsSelfSigned(c) {
				continue
			}
			issuers := pool.Issuers(c)
			if len(issuers) == 0 {
				continue
			}
			all := true
			for _, is := range issuers {
				if !drop[certs.FingerprintOf(is)] {
					all = false
					break
				}
			}
			if all {
				drop[fp] = true
				changed = true
			}
		}
	}
	return drop
}

func countIn(f *certFile, drop map[certs.Fingerprint]bool) int {
	n := 0
	for _, c := range f.certs {
		if drop[certs.FingerprintOf(c)] {
			n++
		}
	}
	return n
}
