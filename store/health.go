package store

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
)

// Health is what monitoring needs to know about the store at one moment: every certificate with
// its validity, whether each station leaf type has a usable leaf and which CAs that leaf depends
// on, the cached OCSP responses of the SECC leaves, the usage against the limits, the pending CSR
// keys and the garbage collection totals. It is read under one shared lock, so its parts agree
// with each other; it is cheap enough to read on every metrics scrape (the index is in memory).
type Health struct {
	// Time is the store's clock when it was read; every "seconds until" is relative to it.
	Time time.Time
	// Certificates is the Inventory.
	Certificates []CertificateRecord
	// Domains are the CA bundles, in CATypes order.
	Domains []DomainHealth
	// Leaves are the station's leaf types, CSMS then V2G.
	Leaves []LeafHealth
	// Entries and Bytes are what the store counts against MaxEntries and MaxBytes (0: no limit).
	Entries    int
	Bytes      int64
	MaxEntries int
	MaxBytes   int64
	// PendingCSRKeys is the number of keys of CSRs still waiting for their certificate.
	PendingCSRKeys int
	// GC are the garbage collection totals since the store was opened.
	GC GCStats
	// ExpiryWarning and ExpiryCritical are the configured expiry thresholds.
	ExpiryWarning, ExpiryCritical time.Duration
}

// DomainHealth counts the trust material of one domain.
type DomainHealth struct {
	Domain CAType
	// Certificates and Files count the certificates and the files of the bundle (a file that
	// does not parse counts as a file without certificates).
	Certificates, Files int
	// Anchors is the number of certificates of the bundle that are valid now and have no issuer
	// in it: what a chain of this domain can end at.
	Anchors int
}

// LeafHealth says whether the next TLS handshake of one leaf type has a leaf.
type LeafHealth struct {
	Type LeafType
	// Status is the answer get_leaf_certificate_info would give now.
	Status InfoStatus
	// Needed is true when the station cannot do its job without this leaf: always for the CSMS
	// leaf (OCPP security profile 3); for the SECC leaf when the V2G domain holds a root (a
	// station without one does no ISO 15118 TLS).
	Needed bool
	// InUse is the leaf handed out now; nil when Status is not Accepted.
	InUse *CertificateRecord
	// Chain are the CA certificates InUse depends on, its issuer first and the trust anchor
	// last: when one of them expires the leaf stops verifying too.
	Chain []CertificateRecord
	// Certificates and Files count the leaves and the certificate files of the leaf directory.
	Certificates, Files int
	// OCSP are the cached OCSP responses of the leaves of this type (V2G only: the SECC leaf
	// staples them), one per leaf that has one, usable or stale.
	OCSP []OCSPHealth
}

// OCSPHealth describes the cached OCSP response of one certificate.
type OCSPHealth struct {
	// Fingerprint is the SHA-256 fingerprint of the certificate (hex), Subject its name.
	Fingerprint, Subject string
	// InUse marks the response of the leaf in use.
	InUse bool
	// Path is the cached DER response.
	Path string
	// ThisUpdate, NextUpdate (zero: none given) and ProducedAt are the response's times.
	ThisUpdate, NextUpdate, ProducedAt time.Time
	// Status is "good", "revoked" or "unknown"; Stale is set once NextUpdate has passed (a TLS
	// server no longer staples it).
	Status string
	Stale  bool
}

// Health reads the store's Health. It changes nothing.
func (s *Store) Health() Health {
	unlock := s.lock.rlock()
	defer unlock()
	now := s.now()
	v := s.readCAs()
	h := Health{Time: now, Certificates: s.inventory(v, now)}
	h.ExpiryWarning, h.ExpiryCritical = s.cfg.ExpiryThresholds()
	for _, t := range CATypes {
		b := v.bundles[t]
		dh := DomainHealth{Domain: t, Files: len(b.files)}
		pool := v.domainPool(t)
		for _, f := range b.files {
			dh.Certificates += len(f.certs)
			for _, c := range f.certs {
				if validityAt(c, now) == validNow && (pool.IsSelfSigned(c) || len(pool.Issuers(c)) == 0) {
					dh.Anchors++
				}
			}
		}
		h.Domains = append(h.Domains, dh)
	}
	v2gRoot := h.Domains[0].Certificates > 0 // CATypes starts with V2G
	for _, lt := range []LeafType{LeafCSMS, LeafV2G, LeafV2G20} {
		ls := s.kindLeaves(lt)
		if lt == LeafV2G20 && len(ls.entries) == 0 {
			// An ISO 15118-20 leaf is optional: a station without one hears nothing of it.
			continue
		}
		lh := s.leafHealth(v, ls, now)
		lh.Needed = lt == LeafCSMS || v2gRoot
		h.Leaves = append(h.Leaves, lh)
	}
	h.Entries, h.Bytes = s.usage()
	h.MaxEntries, h.MaxBytes = s.cfg.MaxStoreEntries, s.cfg.MaxStoreBytes
	h.PendingCSRKeys = len(s.PendingCSRKeys())
	h.GC = s.GCStats()
	return h
}

// leafHealth reads the LeafHealth of one leaf directory (all but Needed).
func (s *Store) leafHealth(v *caView, ls *leafSet, now time.Time) LeafHealth {
	lh := LeafHealth{Type: ls.lt, Certificates: len(ls.entries), Files: len(ls.files)}
	sel, st := s.selectLeaves(v, ls, now, false)
	lh.Status = st
	var inUse certs.Fingerprint
	if st == InfoAccepted {
		e := sel[0].e
		inUse = e.fp
		r := newRecord("leaf", e.cert, e.firstFile().path, now)
		r.LeafType, r.Domain, r.InUse = ls.lt, ls.lt.Domain(), true
		r.Key, r.KeyStatus, r.KeyLocation = s.keyStatus(e, ls)
		lh.InUse = &r
		for _, c := range dependencies(sel[0]) {
			cr := newRecord("ca", c, "", now)
			cr.Domain = ls.lt.Domain()
			lh.Chain = append(lh.Chain, cr)
		}
	}
	if ls.lt.dirType() != LeafV2G {
		return lh
	}
	pool := s.hashPool(v, ls)
	for _, e := range ls.entries {
		if o, ok := s.cachedOCSP(pool, e.cert, now); ok {
			o.InUse = e.fp == inUse
			lh.OCSP = append(lh.OCSP, o)
		}
	}
	return lh
}

// dependencies are the CA certificates of a selected leaf's verified chain, issuer first.
func dependencies(sel selectedLeaf) []*x509.Certificate {
	var out []*x509.Certificate
	if len(sel.chain) < 2 {
		return nil
	}
	for _, c := range sel.chain[1:] {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// cachedOCSP finds the cached OCSP response of c, stale or not; ok is false when there is none
// that parses as a response for c.
func (s *Store) cachedOCSP(pool *certs.Pool, c *x509.Certificate, now time.Time) (OCSPHealth, bool) {
	h, ok := pool.HashData(c, certs.SHA256)
	if !ok {
		return OCSPHealth{}, false
	}
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			if !s.ocspEntryMatches(e, c, h) {
				continue
			}
			der, err := s.readCacheFile(e.derPath)
			if err != nil {
				continue
			}
			resp, err := ocsp.ParseResponseForCert(der, c, nil)
			if err != nil {
				continue
			}
			fp := certs.FingerprintOf(c)
			o := OCSPHealth{
				Fingerprint: hex.EncodeToString(fp[:]), Subject: certs.NameString(c.RawSubject), Path: e.derPath,
				ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate, ProducedAt: resp.ProducedAt,
				Status: "unknown", Stale: stale(der, resp, c, pool, now),
			}
			switch resp.Status {
			case ocsp.Good:
				o.Status = "good"
			case ocsp.Revoked:
				o.Status = "revoked"
			}
			return o, true
		}
	}
	return OCSPHealth{}, false
}

// stale reports whether a cached response is past its usable end: the same judgement the TLS
// server makes before it staples (certs.CheckOCSPResponse), so monitoring never calls fresh what
// the car would not get. Without the issuer at hand only nextUpdate can be judged.
func stale(der []byte, resp *ocsp.Response, c *x509.Certificate, pool *certs.Pool, now time.Time) bool {
	if issuers := pool.Issuers(c); len(issuers) > 0 {
		_, err := certs.CheckOCSPResponse(der, c, issuers[0], now)
		return errors.Is(err, certs.ErrOCSPStale)
	}
	return !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate)
}
