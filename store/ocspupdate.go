package store

import (
	"errors"
	"path/filepath"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
)

// UpdateOCSPCache stores the OCSP response for the certificate named by h, which may be any
// certificate of the store: a CSMS or SECC leaf, a sub-CA of a chain file, a CA of any domain.
// The response is base64 of a DER OCSPResponse (RFC 6960), as OCPP delivers it: it is decoded,
// parsed, and must be a successful response whose CertID names exactly that certificate (serial,
// issuer name hash and issuer key hash), signed by its issuer or by a responder the issuer
// delegated to (OCSPSigning usage, valid now), and not past its nextUpdate: the judgement of
// certs.CheckOCSPResponse, which the TLS server applies before it staples. Its DER is then
// stored in the ocsp/ directory next to the file holding the certificate, with the .hash
// sidecar; a second response replaces the first, wherever that one was stored. Anything else is
// rejected and the cache is unchanged; the interface has no result, so the reason is logged and
// returned. A stored response is a store event (see ocspEvent).
func (s *Store) UpdateOCSPCache(h certs.HashData, responseB64 string) error {
	if err := h.Validate(); err != nil {
		s.log.Warn("update_ocsp_cache rejected: invalid hash data", "err", err)
		return err
	}
	h = h.Normalize()
	if s.tooLarge("update_ocsp_cache", responseB64) {
		return errors.New("OCSP response too large")
	}
	der, err := certs.DecodeBase64(responseB64)
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: response is not base64", "err", err)
		return err
	}
	unlock, err := s.lock.lock()
	if err != nil {
		s.log.Error("update_ocsp_cache: cannot lock the store", "err", err)
		return err
	}
	event, err := s.updateOCSP(h, der)
	unlock()
	if err != nil {
		return err
	}
	s.emit([]Event{event})
	return nil
}

// updateOCSP checks and stores der as the response of the certificate h names, with the store
// locked, and returns the event of the change.
func (s *Store) updateOCSP(h certs.HashData, der []byte) (Event, error) {
	v := s.readCAs()
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	pool := s.hashPool(v, sets...)
	target, issuer, ok := findByHashData(pool, s.allStoredCerts(v, sets), h)
	if !ok {
		err := errors.New("no certificate in the store has this hash data")
		s.log.Warn("update_ocsp_cache rejected", "serial", h.SerialNumber, "err", err)
		return Event{}, err
	}
	resp, err := certs.CheckOCSPResponse(der, target.cert, issuer, s.now())
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: not a valid OCSP response for this certificate", "cert", describe(target.cert), "err", err)
		return Event{}, err
	}
	path, err := s.storeOCSP(target, h, der)
	if err != nil {
		s.log.Error("update_ocsp_cache: write failed", "cert", describe(target.cert), "err", err)
		return Event{}, err
	}
	s.log.Info("cached OCSP response", "cert", describe(target.cert), "status", ocspStatus(resp.Status), "next_update", resp.NextUpdate, "path", path)
	return s.ocspEvent(v, sets, pool, target, path, true), nil
}

// ocspEvent is the event of a change of target's cached OCSP response (stored or removed at
// path). It names what the change concerns, so that a TLS config rebuilds what it cached:
//
//   - a certificate of a V2G leaf's files (the leaf or a sub-CA of its chain file): the V2G leaf
//     type, because the ocsp list of the V2G leaf info changed. After an update (wire) the event
//     has the operation Installed, so that it is published as certificate_store_update with
//     leaf_certificate_type V2G: EvseV2G and IsoMux read the OCSP files when they build their TLS
//     server and rebuild only on such a message, so without it a fresh response would reach no
//     car until the next leaf change (the reference publishes nothing here);
//   - a certificate of a CSMS leaf's files: the CSMS leaf type, not published (no consumer of
//     the interface reloads on it);
//   - a CA of a bundle: its domain, not published.
//
// When both leaf types share one directory, a leaf counts as the type whose domain it chains to.
func (s *Store) ocspEvent(v *caView, sets []*leafSet, pool *certs.Pool, target storedCert, path string, wire bool) Event {
	fp := certs.FingerprintOf(target.cert)
	shared := sets[0].certDir == sets[1].certDir
	for _, ls := range sets {
		for _, e := range ls.entries {
			if !e.holds(fp) || (shared && !s.chainsToDomain(v, pool, e.cert, ls.lt)) {
				continue
			}
			ev := Event{Kind: EventOCSP, LeafType: ls.lt, Path: path}
			if wire && ls.lt == LeafV2G {
				ev.Operation = OperationInstalled
			}
			return ev
		}
	}
	for _, t := range CATypes {
		if v.bundles[t].contains(fp) {
			return Event{Kind: EventOCSP, CAType: t, Path: path}
		}
	}
	return Event{Kind: EventOCSP, Path: path}
}

// storeOCSP writes der as the cached response of target (named by h): over the entry next to
// target's file when there is one, else as a new pair there. Entries for the same certificate in
// other cache directories (the certificate was stored elsewhere when they were written) are
// removed, so no older response can be found before the new one.
func (s *Store) storeOCSP(target storedCert, h certs.HashData, der []byte) (string, error) {
	dir := filepath.Join(filepath.Dir(target.file), ocspDirName)
	derPath, hashPath := "", ""
	var others []ocspEntry
	seen := map[string]bool{}
	for _, d := range append([]string{dir}, s.ocspDirs()...) {
		if seen[d] {
			continue
		}
		seen[d] = true
		for _, e := range s.readOCSPEntries(d) {
			if !s.ocspEntryMatches(e, target.cert, h) {
				continue
			}
			if d == dir && derPath == "" {
				derPath, hashPath = e.derPath, e.hashPth
			} else {
				others = append(others, e)
			}
		}
	}
	fresh := derPath == ""
	if fresh {
		stem := certs.SerialHex(target.cert.SerialNumber) + "_" + h.IssuerKeyHash[:16] + "_ocsp"
		derPath, hashPath = filepath.Join(dir, stem+".der"), filepath.Join(dir, stem+".hash")
	}
	_, statErr := s.fs.Stat(dir)
	newDir := statErr != nil
	if err := writeAtomic(s.fs, derPath, der, 0o644, 0o755); err != nil {
		return "", err
	}
	if err := s.writeIfChanged(hashPath, formatHashFile(h), 0o644); err != nil {
		if fresh {
			// A .der without its .hash is found by nobody; do not leave it behind, nor the
			// ocsp/ directory this write made for it.
			if rerr := removeDurable(s.fs, derPath); rerr != nil {
				s.log.Warn("cannot remove OCSP response after a failed write", "path", derPath, "err", rerr)
			} else if newDir {
				if rerr := removeDurable(s.fs, dir); rerr != nil {
					s.log.Warn("cannot remove the new OCSP directory after a failed write", "dir", dir, "err", rerr)
				}
			}
		}
		return "", err
	}
	for _, e := range others {
		s.log.Info("removing the older cached OCSP response of the same certificate", "path", e.derPath)
		s.removeOCSPEntry(e)
	}
	return derPath, nil
}

func ocspStatus(st int) string {
	switch st {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}
