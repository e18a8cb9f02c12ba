package store

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// The OCSP cache keeps, in an ocsp/ directory next to the file that holds a certificate, one pair
// of files per certificate: NAME.der (the DER OCSPResponse) and NAME.hash (four lines: hash
// algorithm, issuer name hash, issuer key hash, serial), the layout of the reference, so an
// EVerest tree's cache stays readable both ways.
const ocspDirName = "ocsp"

// OCSPRequestData is the interface's OCSPRequestData.
type OCSPRequestData struct {
	HashData     certs.HashData `json:"certificate_hash_data"`
	ResponderURL string         `json:"responder_url"`
}

// OCSPRequestDataList is the interface's OCSPRequestDataList.
type OCSPRequestDataList struct {
	List []OCSPRequestData `json:"ocsp_request_data_list"`
}

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

// ocspResponsePath returns the cached OCSP response of c (whose SHA-256 hash data is h), or "" when
// there is none a consumer could use: the file must be a regular file holding an OCSP response
// for c that is not past its nextUpdate (garbage collection removes stale responses only on its
// tick, and a TLS server must not staple one in between; a .der the reference wrote as base64
// text would not load in OpenSSL either).
func (s *Store) ocspResponsePath(c *x509.Certificate, h certs.HashData) string {
	now := s.now()
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			if !s.ocspEntryMatches(e, c, h) {
				continue
			}
			if err := s.checkCachedOCSP(e.derPath, c, now); err != nil {
				s.log.Debug("cached OCSP response not usable", "path", e.derPath, "err", err)
				continue
			}
			return e.derPath
		}
	}
	return ""
}

// checkCachedOCSP checks that path is a regular file holding a DER OCSP response for c that is
// not stale at now. The signature was checked when the response was stored.
func (s *Store) checkCachedOCSP(path string, c *x509.Certificate, now time.Time) error {
	der, err := s.readCacheFile(path)
	if err != nil {
		return err
	}
	resp, err := ocsp.ParseResponseForCert(der, c, nil)
	if err != nil {
		return err
	}
	return checkFresh(resp, now)
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

// errOCSPStale is returned (wrapped) for a response past its nextUpdate.
var errOCSPStale = errors.New("the response is past its nextUpdate")

// checkFresh rejects a response past its nextUpdate. A response without nextUpdate ("newer
// information is always available") stays usable.
func checkFresh(resp *ocsp.Response, now time.Time) error {
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		return fmt.Errorf("%w (%s)", errOCSPStale, resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
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

// UpdateOCSPCache stores the OCSP response for the certificate named by h, which may be any
// certificate of the store: a CSMS or SECC leaf, a sub-CA of a chain file, a CA of any domain.
// The response is base64 of a DER OCSPResponse (RFC 6960), as OCPP delivers it: it is decoded,
// parsed, and must be a successful response whose CertID names exactly that certificate (serial,
// issuer name hash and issuer key hash), signed by its issuer or by a responder the issuer
// delegated to (OCSPSigning usage, valid now), and not past its nextUpdate. Its DER is then
// stored in the ocsp/ directory next to the file holding the certificate, with the .hash
// sidecar; a second response replaces the first, wherever that one was stored. Anything else is
// rejected and the cache is unchanged; the interface has no result, so the reason is logged and
// returned.
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
	defer unlock()
	v := s.readCAs()
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	pool := s.hashPool(v, sets...)
	target, issuer, ok := findByHashData(pool, s.allStoredCerts(v, sets), h)
	if !ok {
		err := errors.New("no certificate in the store has this hash data")
		s.log.Warn("update_ocsp_cache rejected", "serial", h.SerialNumber, "err", err)
		return err
	}
	resp, err := parseOCSPResponse(der, target.cert, issuer, s.now())
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: not a valid OCSP response for this certificate", "cert", describe(target.cert), "err", err)
		return err
	}
	path, err := s.storeOCSP(target, h, der)
	if err != nil {
		s.log.Error("update_ocsp_cache: write failed", "cert", describe(target.cert), "err", err)
		return err
	}
	s.log.Info("cached OCSP response", "cert", describe(target.cert), "status", ocspStatus(resp.Status), "next_update", resp.NextUpdate, "path", path)
	return nil
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

// parseOCSPResponse parses a DER OCSPResponse for cert, issued by issuer, and checks it at now:
// a successful basic response whose first single response for cert's serial has cert's CertID
// (issuer name and key hash in whatever digest the responder used), signed by the issuer's key
// or by a delegated responder certificate that the issuer signed, that carries the OCSPSigning
// extended key usage and is valid now (RFC 6960 §4.2.2.2), and not past its nextUpdate.
func parseOCSPResponse(der []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		// A responder that signs with the issuer's own key often embeds the issuer's
		// certificate; x/crypto then wants the issuer to have signed itself. Parse without the
		// issuer (the signature is then checked against the embedded certificate) and accept
		// it when the embedded certificate holds the issuer's key.
		alt, altErr := ocsp.ParseResponseForCert(der, cert, nil)
		if altErr != nil || alt.Certificate == nil || !keys.PublicKeysEqual(alt.Certificate.PublicKey, issuer.PublicKey) {
			return nil, err
		}
		resp = alt
	} else if resp.Certificate != nil && !keys.PublicKeysEqual(resp.Certificate.PublicKey, issuer.PublicKey) {
		if err := checkDelegatedResponder(resp.Certificate, now); err != nil {
			return nil, err
		}
	}
	if err := checkCertID(resp, cert, issuer); err != nil {
		return nil, err
	}
	if err := checkFresh(resp, now); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkDelegatedResponder checks the responder certificate of a response not signed by the
// issuer's own key (x/crypto has checked that the issuer signed it).
func checkDelegatedResponder(rc *x509.Certificate, now time.Time) error {
	delegated := false
	for _, u := range rc.ExtKeyUsage {
		delegated = delegated || u == x509.ExtKeyUsageOCSPSigning
	}
	if !delegated {
		return fmt.Errorf("the response is signed by %s, which is not an OCSP responder (no OCSPSigning usage)", describe(rc))
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return fmt.Errorf("the responder certificate %s is not valid now (%s to %s)", describe(rc), rc.NotBefore.UTC().Format(time.RFC3339), rc.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// The ASN.1 of a BasicOCSPResponse's ResponseData, as far as CertIDs go (RFC 6960 §4.2.1).
// x/crypto/ocsp matches a response to a certificate by serial only; the issuer hashes are
// checked here, so a response about another CA's certificate with the same serial is refused.
type (
	ocspCertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}
	ocspSingleResponse struct {
		CertID ocspCertID // the status and times follow; asn1 ignores them
	}
	ocspResponseData struct {
		Version        int `asn1:"optional,default:0,explicit,tag:0"`
		RawResponderID asn1.RawValue
		ProducedAt     time.Time `asn1:"generalized"`
		Responses      []ocspSingleResponse
	}
)

// The CertID digests responders use (SHA-1 is the common default).
var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// checkCertID checks that the single response x/crypto chose for cert (the first with its
// serial) names cert's issuer by name and key.
func checkCertID(resp *ocsp.Response, cert, issuer *x509.Certificate) error {
	var rd ocspResponseData
	if _, err := asn1.Unmarshal(resp.TBSResponseData, &rd); err != nil {
		return fmt.Errorf("response data: %w", err)
	}
	for _, sr := range rd.Responses {
		id := sr.CertID
		if id.SerialNumber == nil || id.SerialNumber.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		var newHash func() hash.Hash
		switch alg := id.HashAlgorithm.Algorithm; {
		case alg.Equal(oidSHA1):
			newHash = sha1.New
		case alg.Equal(oidSHA256):
			newHash = sha256.New
		case alg.Equal(oidSHA384):
			newHash = sha512.New384
		case alg.Equal(oidSHA512):
			newHash = sha512.New
		default:
			return fmt.Errorf("unsupported CertID hash algorithm %v", alg)
		}
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
			return fmt.Errorf("issuer public key: %w", err)
		}
		nameHash, keyHash := newHash(), newHash()
		nameHash.Write(cert.RawIssuer)
		keyHash.Write(spki.PublicKey.Bytes)
		if !bytes.Equal(id.NameHash, nameHash.Sum(nil)) || !bytes.Equal(id.IssuerKeyHash, keyHash.Sum(nil)) {
			return errors.New("the response is for a certificate of another issuer with the same serial")
		}
		return nil
	}
	return errors.New("the response is for another certificate")
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
// when the response checks out, so an EVerest tree's cache becomes usable.
func (s *Store) sweepOCSP(v *caView, sets []*leafSet) []string {
	pool := s.hashPool(v, sets...)
	stored := s.allStoredCerts(v, sets)
	now := s.now()
	var removed []string
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			reason := ""
			if sc, issuer, ok := findByHashData(pool, stored, e.hash); !ok {
				reason = "certificate no longer in the store"
			} else if der, err := s.readCacheFile(e.derPath); err != nil {
				reason = "response file cannot be read: " + err.Error()
			} else if _, err := parseOCSPResponse(der, sc.cert, issuer, now); err != nil {
				reason = err.Error()
				if s.migrateOCSP(e, der, sc.cert, issuer, now) {
					continue
				}
			} else {
				continue
			}
			s.removeOCSPEntry(e)
			removed = append(removed, e.derPath)
			s.log.Info("garbage collection: removed OCSP response", "path", e.derPath, "why", reason)
		}
	}
	return removed
}

// migrateOCSP rewrites a .der that holds a valid response as base64 text (the reference's
// defect 4) as DER, and reports whether it did.
func (s *Store) migrateOCSP(e ocspEntry, data []byte, cert, issuer *x509.Certificate, now time.Time) bool {
	der, err := certs.DecodeBase64(string(data))
	if err != nil {
		return false
	}
	if _, err := parseOCSPResponse(der, cert, issuer, now); err != nil {
		return false
	}
	if err := writeAtomic(s.fs, e.derPath, der, 0o644, 0o755); err != nil {
		s.log.Warn("cannot rewrite base64 OCSP response as DER", "path", e.derPath, "err", err)
		return true // it checks out; try again on the next run rather than delete it
	}
	s.log.Info("garbage collection: rewrote a base64 OCSP response as DER", "path", e.derPath)
	return true
}

// GetV2GOCSPRequestData lists what the OCPP stack must ask OCSP responders about for the
// station's ISO 15118 certificates: every certificate below the root of every SECC chain that
// verifies against the V2G domain now or, for a leaf that is not valid yet, once it starts (so
// the status is ready when it becomes active), each once, with the first OCSP responder URL of
// its AIA extension. Certificates without one are left out, and so are expired leaves and leaves
// the V2G domain does not trust (a station never serves them).
func (s *Store) GetV2GOCSPRequestData() OCSPRequestDataList {
	unlock := s.lock.rlock()
	defer unlock()
	res := OCSPRequestDataList{List: []OCSPRequestData{}}
	v := s.readCAs()
	ls := s.readLeaves(LeafV2G)
	pool := s.hashPool(v, ls)
	now := s.now()
	seen := map[string]bool{}
	for _, e := range ls.entries {
		if validityAt(e.cert, now) == expired {
			continue
		}
		chain, err := s.verifyLeaf(v, ls, e, now, true)
		if err != nil {
			s.log.Info("get_v2g_ocsp_request_data: leaf left out, it does not verify against the V2G domain", "leaf", describe(e.cert), "err", err)
			continue
		}
		res.List = append(res.List, s.requestData(pool, chain, seen)...)
	}
	return res
}

// GetMOOCSPRequestData lists the OCSP request data of a contract certificate chain (leaf first):
// the chain must verify against the V2G or the MO domain (contract certificates are issued under
// either); then every certificate of the verified chain below the root that has an OCSP URL. A
// chain that includes its root gives the same answer as one without (the reference gave none).
func (s *Store) GetMOOCSPRequestData(chainPEM string) OCSPRequestDataList {
	res := OCSPRequestDataList{List: []OCSPRequestData{}}
	if s.tooLarge("get_mo_ocsp_request_data", chainPEM) {
		return res
	}
	cs, err := certs.ParseCertificates([]byte(chainPEM))
	if err != nil || len(cs) == 0 {
		s.log.Warn("get_mo_ocsp_request_data: no certificate in input", "err", err)
		return res
	}
	unlock := s.lock.rlock()
	v := s.readCAs()
	unlock()
	trusted := v.domainPool(CAV2G, CAMO)
	path, err := certs.Verify(cs[0], certs.VerifyOptions{Trusted: trusted, Intermediates: cs[1:], Time: s.now()})
	if err != nil {
		s.log.Warn("get_mo_ocsp_request_data: chain does not verify against the V2G or MO domain", "err", err)
		return res
	}
	// Every CA of the store, so that a trust anchor that is not a root still gets its issuer
	// key hash when its issuer is in another domain.
	pool := certs.NewPool(append(v.all.Certificates(), cs...)...)
	res.List = append(res.List, s.requestData(pool, path, map[string]bool{})...)
	return res
}

// requestData makes the request data of a verified chain (leaf first, trust anchor last): one
// entry for each certificate below the root that has an OCSP URL, its hash data computed against
// the next certificate of the chain (the issuer the chain was verified through; for a trust
// anchor that is not a root, its first issuer in pool). Entries whose hash data is in seen
// already are skipped.
func (s *Store) requestData(pool *certs.Pool, chain []*x509.Certificate, seen map[string]bool) []OCSPRequestData {
	var out []OCSPRequestData
	for i, c := range chain {
		if pool.IsSelfSigned(c) {
			continue // the root: nobody answers for it
		}
		if len(c.OCSPServer) == 0 {
			s.log.Debug("no OCSP responder URL; no request data", "cert", describe(c))
			continue
		}
		var issuer *x509.Certificate
		if i+1 < len(chain) {
			issuer = chain[i+1]
		} else if issuer = pool.Issuer(c); issuer == nil {
			s.log.Warn("issuer unknown; no OCSP request data", "cert", describe(c))
			continue
		}
		h, err := certs.ComputeHashData(c, issuer, certs.SHA256)
		if err != nil {
			s.log.Warn("no OCSP request data", "cert", describe(c), "err", err)
			continue
		}
		key := string(formatHashFile(h))
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, OCSPRequestData{HashData: h, ResponderURL: c.OCSPServer[0]})
	}
	return out
}
