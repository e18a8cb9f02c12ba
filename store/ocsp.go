package store

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// The OCSP cache keeps, in an ocsp/ directory next to the file that holds a certificate, one pair
// of files per certificate: NAME.der (the DER OCSPResponse) and NAME.hash (four lines: hash
// algorithm, issuer name hash, issuer key hash, serial), the layout of the reference, so an
// EVerest tree's cache stays readable both ways.
const ocspDirName = "ocsp"

// ocspEntry is one cached response found on disk.
type ocspEntry struct {
	hash    certs.HashData
	hashPth string
	derPath string
}

// ocspDirs are the directories the cache may live in: next to each CA bundle and in each leaf
// certificate directory, each once, leaf directories first (where update_ocsp_cache writes for
// certificates of leaf chains).
func (s *Store) ocspDirs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
		cd, _, _ := s.cfg.LeafDirs(lt)
		add(filepath.Join(cd, ocspDirName))
	}
	for _, t := range CATypes {
		p := s.cfg.CABundlePath(t)
		if s.isDirBundle(p) {
			add(filepath.Join(p, ocspDirName))
		} else {
			add(filepath.Join(filepath.Dir(p), ocspDirName))
		}
	}
	return out
}

// readOCSPEntries lists the cache entries of dir (those with a readable .hash file).
func (s *Store) readOCSPEntries(dir string) []ocspEntry {
	des, err := s.fs.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []ocspEntry
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".hash") || !de.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, de.Name())
		data, err := s.fs.ReadFile(p)
		if err != nil {
			continue
		}
		h, err := parseHashFile(data)
		if err != nil {
			s.log.Warn("skipping unreadable OCSP hash file", "path", p, "err", err)
			continue
		}
		out = append(out, ocspEntry{hash: h, hashPth: p, derPath: strings.TrimSuffix(p, ".hash") + ".der"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hashPth < out[j].hashPth })
	return out
}

// parseHashFile reads the reference's .hash format: algorithm, issuer name hash, issuer key hash,
// serial, separated by whitespace.
func parseHashFile(data []byte) (certs.HashData, error) {
	f := strings.Fields(string(data))
	if len(f) != 4 {
		return certs.HashData{}, fmt.Errorf("want 4 fields, have %d", len(f))
	}
	alg, err := certs.ParseHashAlgorithm(f[0])
	if err != nil {
		return certs.HashData{}, err
	}
	return certs.HashData{Algorithm: alg, IssuerNameHash: f[1], IssuerKeyHash: f[2], SerialNumber: f[3]}, nil
}

func formatHashFile(h certs.HashData) []byte {
	h = h.Normalize()
	return []byte(fmt.Sprintf("%s\n%s\n%s\n%s\n", h.Algorithm, h.IssuerNameHash, h.IssuerKeyHash, h.SerialNumber))
}

// ocspResponsePath returns the cached OCSP response of c (issued by issuer; h is its SHA-256 hash
// data), or "" when there is none a consumer could use. The file must be a regular file holding
// a response that certs.CheckOCSPResponse accepts at the current time: the judgement the ISO
// 15118 TLS server makes before it staples, so the store never names a file the server would
// refuse (garbage collection removes stale responses only on its tick, and a .der the reference
// wrote as base64 text would not load in OpenSSL either).
func (s *Store) ocspResponsePath(c, issuer *x509.Certificate, h certs.HashData) string {
	if issuer == nil {
		return ""
	}
	now := s.now()
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			if !s.ocspEntryMatches(e, c, h) {
				continue
			}
			der, err := s.readCacheFile(e.derPath)
			if err == nil {
				_, err = certs.CheckOCSPResponse(der, c, issuer, now)
			}
			if err != nil {
				s.log.Debug("cached OCSP response not usable", "path", e.derPath, "err", err)
				continue
			}
			return e.derPath
		}
	}
	return ""
}

// readCacheFile reads a cache file that must be a regular file (a FIFO put there must not make
// a query or the garbage collection hang).
func (s *Store) readCacheFile(path string) ([]byte, error) {
	fi, err := s.fs.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return s.fs.ReadFile(path)
}

// ocspEntryMatches reports whether a cache entry is the one of certificate c (hash h in SHA-256).
// An entry written with another algorithm is compared by serial and issuer name hash.
func (s *Store) ocspEntryMatches(e ocspEntry, c *x509.Certificate, h certs.HashData) bool {
	if e.hash.Algorithm == h.Algorithm {
		return e.hash.Equal(h)
	}
	other := certs.HashData{Algorithm: e.hash.Algorithm, IssuerNameHash: digestHex(e.hash.Algorithm, c.RawIssuer), IssuerKeyHash: e.hash.IssuerKeyHash, SerialNumber: certs.SerialHex(c.SerialNumber)}
	return e.hash.Equal(other)
}

func digestHex(alg certs.HashAlgorithm, data []byte) string {
	var h hash.Hash
	switch alg {
	case certs.SHA384:
		h = sha512.New384()
	case certs.SHA512:
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// storedCert is a certificate of the store with the file that holds it.
type storedCert struct {
	cert *x509.Certificate
	file string
}

// allStoredCerts lists every certificate the store holds with its file: leaf directories first,
// then CA bundles.
func (s *Store) allStoredCerts(v *caView, sets []*leafSet) []storedCert {
	var out []storedCert
	for _, ls := range sets {
		for _, f := range ls.files {
			for _, c := range f.certs {
				out = append(out, storedCert{c, f.path})
			}
		}
	}
	for _, t := range CATypes {
		for _, f := range v.bundles[t].files {
			for _, c := range f.certs {
				out = append(out, storedCert{c, f.path})
			}
		}
	}
	return out
}

// ocspIssuers are the certificates that may have issued c as far as OCSP is concerned: c itself
// when it is self-signed, otherwise every issuer the pool holds (a cross-signed CA has several,
// and the hash data names one of them by its key).
func ocspIssuers(pool *certs.Pool, c *x509.Certificate) []*x509.Certificate {
	if pool.IsSelfSigned(c) {
		return []*x509.Certificate{c}
	}
	return pool.Issuers(c)
}

// findByHashData returns the first stored certificate that h names, with the issuer h's issuer
// key hash is of. Hex is compared case-insensitively and serials up to leading zeros.
func findByHashData(pool *certs.Pool, stored []storedCert, h certs.HashData) (storedCert, *x509.Certificate, bool) {
	h = h.Normalize()
	for _, sc := range stored {
		if certs.SerialHex(sc.cert.SerialNumber) != h.SerialNumber {
			continue
		}
		for _, is := range ocspIssuers(pool, sc.cert) {
			if ch, err := certs.ComputeHashData(sc.cert, is, h.Algorithm); err == nil && ch.Equal(h) {
				return sc, is, true
			}
		}
	}
	return storedCert{}, nil, false
}

// removeOCSPFor removes the cached OCSP responses of c stored next to certFile.
func (s *Store) removeOCSPFor(certFile string, c *x509.Certificate) {
	dir := filepath.Join(filepath.Dir(certFile), ocspDirName)
	for _, e := range s.readOCSPEntries(dir) {
		mine := certs.HashData{Algorithm: e.hash.Algorithm, IssuerNameHash: digestHex(e.hash.Algorithm, c.RawIssuer), IssuerKeyHash: e.hash.IssuerKeyHash, SerialNumber: certs.SerialHex(c.SerialNumber)}
		if mine.Equal(e.hash) {
			s.removeOCSPEntry(e)
		}
	}
}

func (s *Store) removeOCSPEntry(e ocspEntry) {
	for _, p := range []string{e.derPath, e.hashPth} {
		if err := removeDurable(s.fs, p); err != nil {
			s.log.Warn("cannot remove OCSP cache file", "path", p, "err", err)
		}
	}
}

// sweepOCSP removes cache entries that can no longer serve: those whose certificate is gone from
// the store, whose .der is missing, and whose response no longer checks out (past its nextUpdate
// above all: a stale response must not be stapled; or a delegated responder that expired). A
// .der that holds the response as base64 text, as the reference wrote it, is rewritten as DER
// when the response checks out, so an EVerest tree's cache becomes usable. Each removal of a
// response whose certificate is still stored is a change of what that certificate's leaf info
// or domain says, and comes back as an event (not for the wire: see ocspEvent).
func (s *Store) sweepOCSP(v *caView, sets []*leafSet) ([]string, []Event) {
	pool := s.hashPool(v, sets...)
	stored := s.allStoredCerts(v, sets)
	now := s.now()
	var removed []string
	var events []Event
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			reason := ""
			sc, issuer, ok := findByHashData(pool, stored, e.hash)
			if !ok {
				reason = "certificate no longer in the store"
			} else if der, err := s.readCacheFile(e.derPath); err != nil {
				reason = "response file cannot be read: " + err.Error()
			} else if _, err := certs.CheckOCSPResponse(der, sc.cert, issuer, now); err != nil {
				reason = err.Error()
				if s.migrateOCSP(e, der, sc.cert, issuer, now) {
					continue
				}
			} else {
				continue
			}
			s.removeOCSPEntry(e)
			removed = append(removed, e.derPath)
			if ok {
				events = append(events, s.ocspEvent(v, sets, pool, sc, e.derPath, false))
			}
			s.log.Info("garbage collection: removed OCSP response", "path", e.derPath, "why", reason)
		}
	}
	return removed, events
}

// migrateOCSP rewrites a .der that holds a valid response as base64 text (the reference's
// defect 4) as DER, and reports whether it did.
func (s *Store) migrateOCSP(e ocspEntry, data []byte, cert, issuer *x509.Certificate, now time.Time) bool {
	der, err := certs.DecodeBase64(string(data))
	if err != nil {
		return false
	}
	if _, err := certs.CheckOCSPResponse(der, cert, issuer, now); err != nil {
		return false
	}
	if err := writeAtomic(s.fs, e.derPath, der, 0o644, 0o755); err != nil {
		s.log.Warn("cannot rewrite base64 OCSP response as DER", "path", e.derPath, "err", err)
		return true // it checks out; try again on the next run rather than delete it
	}
	s.log.Info("garbage collection: rewrote a base64 OCSP response as DER", "path", e.derPath)
	return true
}
