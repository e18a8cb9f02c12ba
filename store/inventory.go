package store

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"math"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// CertificateRecord describes one stored certificate for operators (`evsesec ls`). It never holds
// key material or the password.
type CertificateRecord struct {
	// Kind is "ca" for trust material of a domain, "leaf" for a station leaf and "chain" for a
	// sub-CA inside a leaf's chain file.
	Kind      string    `json:"kind"`
	Domain    CAType    `json:"domain,omitempty"`
	LeafType  LeafType  `json:"leaf_type,omitempty"`
	Path      string    `json:"path"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Validity is "valid", "expired" or "not yet valid" at the time of the listing.
	Validity string `json:"validity"`
	// DaysLeft is the whole days until NotAfter (negative once expired).
	DaysLeft   int    `json:"days_left"`
	SelfSigned bool   `json:"self_signed"`
	IsCA       bool   `json:"is_ca"`
	Hash       string `json:"sha256_fingerprint"`
	// Key is the key file of a leaf, KeyStatus "ok", "missing" or why it cannot be used, and
	// KeyLocation where the key lives ("file"; hardware backends add theirs).
	Key         string `json:"key,omitempty"`
	KeyStatus   string `json:"key_status,omitempty"`
	KeyLocation string `json:"key_location,omitempty"`
	// InUse marks the leaf the store hands out now for its type.
	InUse bool `json:"in_use,omitempty"`
	// SeccID is the SECC-ID of a SECC leaf (V2G, V2G20): its CN, which OCPP 2.0.1 sets to the
	// ISO15118SeccId of the EVSE it was issued for.
	SeccID string `json:"secc_id,omitempty"`
}

func validityName(v validity) string {
	switch v {
	case expired:
		return "expired"
	case notYetValid:
		return "not yet valid"
	}
	return "valid"
}

func newRecord(kind string, c *x509.Certificate, path string, now time.Time) CertificateRecord {
	fp := certs.FingerprintOf(c)
	return CertificateRecord{
		Kind: kind, Path: path, Subject: certs.NameString(c.RawSubject), Issuer: certs.NameString(c.RawIssuer),
		Serial: certs.SerialHex(c.SerialNumber), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		Validity:   validityName(validityAt(c, now)),
		DaysLeft:   int(math.Floor(c.NotAfter.Sub(now).Hours() / 24)),
		SelfSigned: certs.IsSelfSigned(c), IsCA: c.IsCA,
		Hash: hex.EncodeToString(fp[:]),
	}
}

// Inventory lists every certificate of the store: the CA domains' trust material, then the leaf
// directories (each leaf with its key status, and the sub-CAs of its chain files).
func (s *Store) Inventory() []CertificateRecord {
	unlock := s.lock.rlock()
	defer unlock()
	return s.inventory(s.readCAs(), s.now())
}

// inventory makes the Inventory from a view read under the lock.
func (s *Store) inventory(v *caView, now time.Time) []CertificateRecord {
	var out []CertificateRecord
	for _, t := range CATypes {
		for _, f := range v.bundles[t].files {
			for _, c := range f.certs {
				r := newRecord("ca", c, f.path, now)
				r.Domain = t
				out = append(out, r)
			}
		}
	}
	inUse := s.inUse(v, now)
	for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
		ls := s.readLeaves(lt)
		for _, e := range ls.entries {
			lt := ls.typeOf(e)
			r := newRecord("leaf", e.cert, e.firstFile().path, now)
			r.LeafType, r.Domain, r.InUse = lt, lt.Domain(), inUse[e.fp]
			r.SeccID = seccIDOf(lt, e.cert)
			r.Key, r.KeyStatus, r.KeyLocation = s.keyStatus(e, ls)
			out = append(out, r)
			if cf := e.chainFile(); cf != nil {
				for _, c := range cf.certs[1:] {
					cr := newRecord("chain", c, cf.path, now)
					cr.LeafType, cr.Domain = lt, lt.Domain()
					out = append(out, cr)
				}
			}
		}
	}
	return out
}

// keyStatus says where a leaf's key is and whether it can be used.
func (s *Store) keyStatus(e *leafEntry, ls *leafSet) (path, status, location string) {
	if certs.KeyAlgorithmOf(e.cert) == certs.KeyEd448 {
		return "", "unsupported (" + errEd448Unsupported.Error() + ")", ""
	}
	kl := s.findKey(e.cert, e.firstFile().path, ls.keyDir)
	if kl.key != nil {
		return kl.key.path, "ok", string(kl.key.kind)
	}
	for _, k := range kl.unreadable {
		switch {
		case errors.Is(k.err, keys.ErrWrongPassword):
			return "", "missing (some keys in " + ls.keyDir + " do not decrypt with the configured password)", ""
		case errors.Is(k.err, keys.ErrPasswordRequired):
			return "", "missing (some keys in " + ls.keyDir + " are encrypted and no password is configured)", ""
		}
	}
	return "", "missing", ""
}

// exists reports whether path exists (any type).
func (s *Store) exists(path string) bool {
	_, err := s.fs.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
