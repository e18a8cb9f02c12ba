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

// ocspResponsePath returns the cached OCSP response of c (whose SHA-256 hash data is h), or "".
func (s *Store) ocspResponsePath(c *x509.Certificate, h certs.HashData) string {
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			if !s.ocspEntryMatches(e, c, h) {
				continue
			}
			if fi, err := s.fs.Stat(e.derPath); err == nil && fi.Mode().IsRegular() {
				return e.derPath
			}
		}
	}
	return ""
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

// UpdateOCSPCache stores the OCSP response for the certificate named by h. The response is
// base64 of a DER OCSPResponse (RFC 6960), as OCPP delivers it: it is decoded, parsed, and must
// be a successful response for exactly that certificate, signed by its issuer or by a responder
// the issuer delegated to; then its DER is stored (a second response replaces the first).
// Anything else is rejected and the cache is unchanged; the interface has no result, so the
// reason is logged and returned.
func (s *Store) UpdateOCSPCache(h certs.HashData, responseB64 string) error {
	if err := h.Validate(); err != nil {
		s.log.Warn("update_ocsp_cache rejected: invalid hash data", "err", err)
		return err
	}
	der, err := certs.DecodeBase64(responseB64)
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: response is not base64", "err", err)
		return err
	}
	unlock, err := s.lock.lock()
	if err != nil {
		return err
	}
	defer unlock()
	v := s.readCAs()
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	pool := s.hashPool(v, sets...)
	var target storedCert
	for _, sc := range s.allStoredCerts(v, sets) {
		if hc, ok := pool.HashData(sc.cert, h.Algorithm); ok && hc.Equal(h) {
			target = sc
			break
		}
	}
	if target.cert == nil {
		err := errors.New("no certificate in the store has this hash data")
		s.log.Warn("update_ocsp_cache rejected", "err", err)
		return err
	}
	issuer := pool.Issuer(target.cert)
	if issuer == nil {
		issuer = target.cert // a self-signed certificate answers for itself
	}
	resp, err := parseOCSPResponse(der, target.cert, issuer)
	if err != nil {
		s.log.Warn("update_ocsp_cache rejected: not a valid OCSP response for this certificate", "cert", describe(target.cert), "err", err)
		return err
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Cmp(target.cert.SerialNumber) != 0 {
		err := errors.New("the response is for another certificate")
		s.log.Warn("update_ocsp_cache rejected", "cert", describe(target.cert), "err", err)
		return err
	}
	dir := filepath.Join(filepath.Dir(target.file), ocspDirName)
	derPath, hashPath := "", ""
	for _, e := range s.readOCSPEntries(dir) {
		if s.ocspEntryMatches(e, target.cert, h) {
			derPath, hashPath = e.derPath, e.hashPth
			break
		}
	}
	if derPath == "" {
		stem := certs.SerialHex(target.cert.SerialNumber) + "_" + h.Normalize().IssuerKeyHash[:16] + "_ocsp"
		derPath, hashPath = filepath.Join(dir, stem+".der"), filepath.Join(dir, stem+".hash")
	}
	if err := writeAtomic(s.fs, derPath, der, 0o644, 0o755); err != nil {
		s.log.Error("update_ocsp_cache: write failed", "err", err)
		return err
	}
	if err := s.writeIfChanged(hashPath, formatHashFile(h), 0o644); err != nil {
		s.log.Error("update_ocsp_cache: write failed", "err", err)
		return err
	}
	s.log.Info("cached OCSP response", "cert", describe(target.cert), "status", ocspStatus(resp.Status), "path", derPath)
	return nil
}

// parseOCSPResponse parses a DER OCSPResponse for cert and checks its signature: made by the
// issuer's key, or by a delegated responder certificate that the issuer signed and that carries
// the OCSPSigning extended key usage (RFC 6960 §4.2.2.2).
func parseOCSPResponse(der []byte, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
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
		return alt, nil
	}
	if resp.Certificate != nil && !keys.PublicKeysEqual(resp.Certificate.PublicKey, issuer.PublicKey) {
		delegated := false
		for _, u := range resp.Certificate.ExtKeyUsage {
			delegated = delegated || u == x509.ExtKeyUsageOCSPSigning
		}
		if !delegated {
			return nil, errors.New("the response is signed by a certificate that is not an OCSP responder (no OCSPSigning usage)")
		}
	}
	return resp, nil
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

// sweepOCSP removes cached responses whose certificate is gone from the store and responses past
// their nextUpdate (a stale response must not be stapled).
func (s *Store) sweepOCSP(v *caView, sets []*leafSet) []string {
	pool := s.hashPool(v, sets...)
	known := map[certs.HashAlgorithm][]certs.HashData{}
	stored := s.allStoredCerts(v, sets)
	hashesFor := func(alg certs.HashAlgorithm) []certs.HashData {
		if hs, ok := known[alg]; ok {
			return hs
		}
		var hs []certs.HashData
		for _, sc := range stored {
			if h, ok := pool.HashData(sc.cert, alg); ok {
				hs = append(hs, h)
			}
		}
		known[alg] = hs
		return hs
	}
	now := s.now()
	var removed []string
	for _, dir := range s.ocspDirs() {
		for _, e := range s.readOCSPEntries(dir) {
			found := false
			for _, h := range hashesFor(e.hash.Algorithm) {
				if h.Equal(e.hash) {
					found = true
					break
				}
			}
			reason := ""
			if !found {
				reason = "certificate no longer in the store"
			} else if der, err := s.fs.ReadFile(e.derPath); err == nil {
				if resp, err := ocsp.ParseResponse(der, nil); err == nil && !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
					reason = "past its nextUpdate " + resp.NextUpdate.UTC().String()
				}
			}
			if reason == "" {
				continue
			}
			s.removeOCSPEntry(e)
			removed = append(removed, e.derPath)
			s.log.Info("garbage collection: removed OCSP response", "path", e.derPath, "why", reason)
		}
	}
	return removed
}

// GetV2GOCSPRequestData lists what the OCPP stack must ask OCSP responders about for the
// station's ISO 15118 certificates: every certificate below the root of every SECC chain that is
// valid or not valid yet (so the status is ready when a future leaf becomes active), each once,
// with the first OCSP responder URL of its AIA extension. Certificates without one are left out.
func (s *Store) GetV2GOCSPRequestData() OCSPRequestDataList {
	unlock := s.lock.rlock()
	defer unlock()
	res := OCSPRequestDataList{List: []OCSPRequestData{}}
	v := s.readCAs()
	ls := s.readLeaves(LeafV2G)
	pool := s.hashPool(v, ls)
	now := s.now()
	seen := map[certs.Fingerprint]bool{}
	for _, e := range ls.entries {
		if validityAt(e.cert, now) == expired {
			continue
		}
		chain := append([]*x509.Certificate{e.cert}, issuerPath(pool, e.cert)...)
		res.List = append(res.List, requestData(pool, chain, seen)...)
	}
	return res
}

// GetMOOCSPRequestData lists the OCSP request data of a contract certificate chain (leaf first):
// the chain must verify against the V2G or the MO domain (contract certificates are issued under
// either); then every certificate of the verified chain below the root that has an OCSP URL.
func (s *Store) GetMOOCSPRequestData(chainPEM string) OCSPRequestDataList {
	res := OCSPRequestDataList{List: []OCSPRequestData{}}
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
	if last := path[len(path)-1]; certs.IsSelfSigned(last) {
		path = path[:len(path)-1]
	}
	pool := certs.NewPool(append(append([]*x509.Certificate{}, trusted.Certificates()...), cs...)...)
	res.List = append(res.List, requestData(pool, path, map[certs.Fingerprint]bool{})...)
	return res
}

// requestData makes the request data of chain's certificates that have an OCSP URL and a
// computable hash, skipping those already in seen.
func requestData(pool *certs.Pool, chain []*x509.Certificate, seen map[certs.Fingerprint]bool) []OCSPRequestData {
	var out []OCSPRequestData
	for _, c := range chain {
		fp := certs.FingerprintOf(c)
		if seen[fp] || len(c.OCSPServer) == 0 {
			continue
		}
		h, ok := pool.HashData(c, certs.SHA256)
		if !ok {
			continue
		}
		seen[fp] = true
		out = append(out, OCSPRequestData{HashData: h, ResponderURL: c.OCSPServer[0]})
	}
	return out
}
