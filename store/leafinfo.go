package store

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// CertificateOCSP is the interface's CertificateOCSP: one certificate of a chain and the path of
// its cached OCSP response, if there is one.
type CertificateOCSP struct {
	Hash     certs.HashData `json:"hash"`
	OCSPPath string         `json:"ocsp_path,omitempty"`
}

// CertificateInfo is the interface's CertificateInfo: where a leaf, its chain and its key are.
type CertificateInfo struct {
	Key               string            `json:"key"`
	CertificateRoot   string            `json:"certificate_root,omitempty"`
	Certificate       string            `json:"certificate,omitempty"`
	CertificateSingle string            `json:"certificate_single,omitempty"`
	CertificateCount  int               `json:"certificate_count"`
	Password          string            `json:"password,omitempty"`
	OCSP              []CertificateOCSP `json:"ocsp,omitempty"`
}

// CertificateInfoResult is the interface's GetCertificateInfoResult.
type CertificateInfoResult struct {
	Status InfoStatus       `json:"status"`
	Info   *CertificateInfo `json:"info,omitempty"`
}

// CertificateFullInfoResult is the interface's GetCertificateFullInfoResult.
type CertificateFullInfoResult struct {
	Status InfoStatus        `json:"status"`
	Info   []CertificateInfo `json:"info"`
}

// selectedLeaf is a leaf chosen for use: valid now, trusted, with its key.
type selectedLeaf struct {
	e     *leafEntry
	key   *keyFile
	chain []*x509.Certificate // verified: leaf first, trust anchor last
}

// selectLeaves picks usable leaves of ls, newest first: valid now, verifying against the type's
// domain, with a readable matching key. With all, every usable leaf; otherwise the first. Each
// candidate passed over is logged with its reason. The status says why nothing was found:
// NotFound (no leaf at all), NotFoundValid (none valid now and trusted), PrivateKeyNotFound.
func (s *Store) selectLeaves(v *caView, ls *leafSet, now time.Time, all bool) ([]selectedLeaf, InfoStatus) {
	if len(ls.entries) == 0 {
		return nil, InfoNotFound
	}
	if m := ls.memoizedSelection(v, all, now); m != nil {
		return m.sel, m.status
	}
	sel, status := s.selectLeavesAt(v, ls, now, all)
	ls.keepSelection(v, all, now, sel, status)
	return sel, status
}

// selectLeavesAt makes the selection of selectLeaves.
func (s *Store) selectLeavesAt(v *caView, ls *leafSet, now time.Time, all bool) ([]selectedLeaf, InfoStatus) {
	return s.selectLeavesLogged(v, ls, now, all, s.log)
}

// selectLeavesAhead is the selection at a moment other than now (looking ahead for the next
// leaf in use): nothing is logged, since "passed over: expired" of a leaf that is valid now
// would only mislead whoever reads the log.
func (s *Store) selectLeavesAhead(v *caView, ls *leafSet, at time.Time, all bool) ([]selectedLeaf, InfoStatus) {
	return s.selectLeavesLogged(v, ls, at, all, slog.New(slog.DiscardHandler))
}

func (s *Store) selectLeavesLogged(v *caView, ls *leafSet, now time.Time, all bool, log *slog.Logger) ([]selectedLeaf, InfoStatus) {
	var out []selectedLeaf
	usableSeen := false
	for _, e := range ls.entries {
		switch validityAt(e.cert, now) {
		case expired:
			log.Info("leaf passed over: expired", "type", ls.lt, "leaf", describe(e.cert), "not_after", e.cert.NotAfter)
			continue
		case notYetValid:
			log.Info("leaf passed over: not yet valid", "type", ls.lt, "leaf", describe(e.cert), "not_before", e.cert.NotBefore)
			continue
		}
		chain, err := s.verifyLeaf(v, ls, e, now, false)
		if err != nil {
			log.Warn("leaf passed over: untrusted", "type", ls.lt, "leaf", describe(e.cert), "err", err)
			continue
		}
		usableSeen = true
		kl := s.findKey(e.cert, e.firstFile().path, ls.keyDir)
		if kl.key == nil {
			reason := "no matching private key in " + ls.keyDir
			for _, k := range kl.unreadable {
				if errors.Is(k.err, keys.ErrWrongPassword) || errors.Is(k.err, keys.ErrPasswordRequired) {
					reason += "; some keys could not be decrypted with the configured password"
					break
				}
			}
			log.Warn("leaf passed over: "+reason, "type", ls.lt, "leaf", describe(e.cert))
			continue
		}
		out = append(out, selectedLeaf{e: e, key: kl.key, chain: chain})
		if !all {
			break
		}
	}
	switch {
	case len(out) > 0:
		return out, InfoAccepted
	case usableSeen:
		return nil, InfoPrivateKeyNotFound
	default:
		return nil, InfoNotFoundValid
	}
}

// info describes a selected leaf for the interface.
func (s *Store) info(sel selectedLeaf, pool *certs.Pool, enc EncodingFormat, includeOCSP bool) CertificateInfo {
	e := sel.e
	in := CertificateInfo{Key: sel.key.path, Password: s.cfg.PrivateKeyPassword, CertificateCount: 1}
	chainCerts := []*x509.Certificate{e.cert}
	if len(e.single) > 0 {
		in.CertificateSingle = e.single[0].path
		in.Certificate = e.single[0].path
	}
	if cf := e.chainFile(); cf != nil {
		in.Certificate = cf.path
		in.CertificateCount = len(cf.certs)
		chainCerts = cf.certs
	}
	if anchor := sel.chain[len(sel.chain)-1]; anchor != nil {
		in.CertificateRoot = s.anchorPEM(anchor)
	}
	if includeOCSP {
		in.OCSP = s.chainOCSP(pool, chainCerts)
	}
	if enc == EncodingDER {
		s.derPaths(sel, &in, chainCerts)
	}
	return in
}

// chainOCSP lists one CertificateOCSP per certificate of the file info's certificate names, in
// the file's order: EvseV2G pairs the list with the file's certificates by index and staples
// nothing when the counts differ. A certificate whose issuer the store does not hold (an extra
// certificate of a chain file, off the verified path) keeps its position with an empty hash and
// no path, as the reference does, rather than shifting every later entry.
func (s *Store) chainOCSP(pool *certs.Pool, chain []*x509.Certificate) []CertificateOCSP {
	out := make([]CertificateOCSP, 0, len(chain))
	for _, c := range chain {
		issuer := c
		if !pool.IsSelfSigned(c) {
			issuer = pool.Issuer(c)
		}
		h, ok := pool.HashData(c, certs.SHA256)
		if !ok || issuer == nil {
			out = append(out, CertificateOCSP{Hash: certs.HashData{Algorithm: certs.SHA256}})
			continue
		}
		out = append(out, CertificateOCSP{Hash: h, OCSPPath: s.ocspResponsePath(c, issuer, h)})
	}
	return out
}

// anchorPEM is the PEM text of a trust anchor, encoded once: every leaf info carries it, and a
// TLS handshake asks for one.
func (s *Store) anchorPEM(c *x509.Certificate) string {
	s.pemMu.Lock()
	p, ok := s.pems[c]
	s.pemMu.Unlock()
	if ok {
		return p
	}
	p = string(certs.EncodePEM(c))
	s.pemMu.Lock()
	// The keys keep their certificates alive, so an address is never reused for another
	// certificate while it is a key; a store sees few anchors, the bound is for safety.
	if s.pems == nil || len(s.pems) >= 64 {
		s.pems = map[*x509.Certificate]string{}
	}
	s.pems[c] = p
	s.pemMu.Unlock()
	return p
}

// GetLeafCertificateInfo returns the leaf of type lt to use now: the valid, trusted leaf with
// the latest notAfter that has its key (ties: the later notBefore, then the fingerprint). V2G
// and V2G20 each choose among the SECC leaves of their own kind only (by key algorithm).
// Rejected for types the station holds no leaves of (MF, MO). With DER, the certificate, chain
// and key paths point to DER files evsesec writes next to the PEM ones (in der/).
func (s *Store) GetLeafCertificateInfo(lt LeafType, enc EncodingFormat, includeOCSP bool) CertificateInfoResult {
	if !stationLeaf(lt) {
		return CertificateInfoResult{Status: InfoRejected}
	}
	unlock := s.queryLock(enc)
	defer unlock()
	v := s.readCAs()
	ls := s.kindLeaves(lt)
	sel, status := s.selectLeaves(v, ls, s.now(), false)
	if status != InfoAccepted {
		return CertificateInfoResult{Status: status}
	}
	in := s.info(sel[0], s.hashPool(v, ls), enc, includeOCSP)
	return CertificateInfoResult{Status: InfoAccepted, Info: &in}
}

// GetAllValidCertificatesInfo returns, for every trust anchor that has one, the newest usable
// leaf of type lt under it (a station serving cars of several V2G roots). NotFoundValid and the
// other statuses as GetLeafCertificateInfo; never Accepted with an empty list.
func (s *Store) GetAllValidCertificatesInfo(lt LeafType, enc EncodingFormat, includeOCSP bool) CertificateFullInfoResult {
	res := CertificateFullInfoResult{Info: []CertificateInfo{}}
	if !stationLeaf(lt) {
		res.Status = InfoRejected
		return res
	}
	unlock := s.queryLock(enc)
	defer unlock()
	v := s.readCAs()
	ls := s.kindLeaves(lt)
	now := s.now()
	sel, status := s.selectLeaves(v, ls, now, true)
	res.Status = status
	if status != InfoAccepted {
		return res
	}
	perRoot := newestPerRoot
	if m := ls.memoizedSelection(v, true, now); m != nil {
		perRoot = func([]selectedLeaf) []selectedLeaf { return m.newestPerRoot() }
	}
	pool := s.hashPool(v, ls)
	for _, sl := range perRoot(sel) {
		res.Info = append(res.Info, s.info(sl, pool, enc, includeOCSP))
	}
	return res
}

// GetLeafExpiryDaysCount returns the whole days until the current leaf of type lt expires
// (truncated: 23 hours left is 0), or 0 when there is none.
func (s *Store) GetLeafExpiryDaysCount(lt LeafType) int {
	if !stationLeaf(lt) {
		return 0
	}
	unlock := s.lock.rlock()
	defer unlock()
	v := s.readCAs()
	now := s.now()
	sel, status := s.selectLeaves(v, s.kindLeaves(lt), now, false)
	if status != InfoAccepted {
		return 0
	}
	days := sel[0].e.cert.NotAfter.Sub(now).Hours() / 24
	return int(math.Trunc(days))
}

// queryLock takes the read lock, or the write lock for DER queries, which write files: the
// store's lock when it can be had, else the in-process one alone (a certs root this process
// cannot write, where the DER copies fail and the PEM paths are answered).
func (s *Store) queryLock(enc EncodingFormat) func() {
	if enc == EncodingDER {
		unlock, _, _ := s.lock.lockOrLocal()
		return unlock
	}
	return s.lock.rlock()
}

// derDirName is the subdirectory of a leaf directory where DER copies of leaves, chains and keys
// are written for consumers that ask for DER. It is not read as part of the store.
const derDirName = "der"

// derPaths writes (when missing or changed) DER copies of the leaf, its chain and its key and
// points info at them. On failure the PEM paths stay, with a warning.
func (s *Store) derPaths(sel selectedLeaf, in *CertificateInfo, chain []*x509.Certificate) {
	dir := filepath.Join(filepath.Dir(sel.e.firstFile().path), derDirName)
	// The directory holds a copy of the private key: it is made private before anything is
	// written into it.
	if err := s.fs.MkdirAll(dir, 0o700); err != nil {
		s.log.Warn("DER copies not written: cannot create their directory", "dir", dir, "err", err)
		return
	}
	stem := strings.TrimSuffix(filepath.Base(sel.e.firstFile().path), filepath.Ext(sel.e.firstFile().path))
	var chainDER []byte
	for _, c := range chain {
		chainDER = append(chainDER, c.Raw...)
	}
	keyData, err := s.fs.ReadFile(sel.key.path)
	if err != nil {
		s.log.Warn("DER copies not written: cannot read key", "path", sel.key.path, "err", err)
		return
	}
	signer, err := s.keyBackend().Signer(keyData)
	if err != nil {
		s.log.Warn("DER copies not written: cannot open key", "path", sel.key.path, "err", err)
		return
	}
	keyDER, err := s.keyDER(signer, filepath.Join(dir, stem+".key.der"))
	if err != nil {
		s.log.Warn("DER copies not written: cannot encode key", "err", err)
		return
	}
	files := []struct {
		name string
		data []byte
		perm fs.FileMode
		dst  *string
	}{
		{stem + ".der", sel.e.cert.Raw, 0o644, &in.CertificateSingle},
		{stem + ".chain.der", chainDER, 0o644, &in.Certificate},
		{stem + ".key.der", keyDER, 0o600, &in.Key},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := s.writeIfChanged(p, f.data, f.perm); err != nil {
			s.log.Warn("DER copy not written", "path", p, "err", err)
			continue
		}
		*f.dst = p
	}
}

// keyDER returns the DER form of the key for path: the bytes already there when they hold the
// same key (an encrypted encoding differs on every run, so it is not rewritten needlessly),
// otherwise a fresh PKCS#8 encoding, encrypted when a password is configured.
func (s *Store) keyDER(signer crypto.Signer, path string) ([]byte, error) {
	if old, err := s.fs.ReadFile(path); err == nil {
		if k, err := keys.ParsePEM(old, []byte(s.cfg.PrivateKeyPassword)); err == nil && keys.PublicKeysEqual(k.Public(), signer.Public()) {
			return old, nil
		}
	}
	pemBytes, err := keys.MarshalPEM(signer, []byte(s.cfg.PrivateKeyPassword))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("key encoding produced no PEM block")
	}
	return blk.Bytes, nil
}
