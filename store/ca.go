package store

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/evsesec/evsesec/certs"
)

// isCACertificate reports whether c may act as a CA: basicConstraints CA:TRUE, or, as OpenSSL
// accepts for trust anchors, a self-signed certificate without basicConstraints that is a v1
// certificate or whose key usage allows signing certificates.
func isCACertificate(c *x509.Certificate, selfSigned bool) bool {
	if c.BasicConstraintsValid {
		return c.IsCA
	}
	return selfSigned && (c.Version < 3 || c.KeyUsage&x509.KeyUsageCertSign != 0)
}

// InstallCACertificate installs one PEM (or DER) certificate into the bundle of domain t.
//
// Results: CertificateStoreMaxLengthExceeded when the store is over a limit (checked first, as in
// the reference); InvalidFormat when the input is not exactly one certificate or the certificate
// is not a CA; Expired when it has expired (a root that is not valid yet installs: root
// rollover); InvalidSignature when it names itself as issuer but its signature does not verify,
// or when certificates named as its issuer exist but none signed it; NoRootCertificateInstalled
// when a sub-CA's issuer is in no domain (it could never be listed or deleted by hash, EVerest
// issue 2109); WriteError when the bundle cannot be written; else Accepted. Installing a
// certificate the domain already holds is Accepted and writes nothing.
func (s *Store) InstallCACertificate(pemText string, t CAType) InstallResult {
	if !t.Valid() || s.tooLarge("install_ca_certificate", pemText) {
		return InstallInvalidFormat
	}
	// What the input alone decides is decided before the write lock (refuseInput).
	cs, err := certs.ParseCertificates([]byte(pemText))
	if err != nil || len(cs) != 1 {
		return s.refuseInput("install_ca_certificate", InstallInvalidFormat, "not exactly one certificate", "domain", t, "count", len(cs), "err", err)
	}
	c := cs[0]
	selfSigned := certs.IsSelfSigned(c)
	if !isCACertificate(c, selfSigned) {
		return s.refuseInput("install_ca_certificate", InstallInvalidFormat, "not a CA certificate", "domain", t, "subject", c.Subject.String())
	}
	return write(s, "install_ca_certificate", InstallWriteError, func() (InstallResult, []Event) {
		return s.installCA(c, selfSigned, t)
	})
}

// installCA is InstallCACertificate under the write lock, for c, a CA certificate.
func (s *Store) installCA(c *x509.Certificate, selfSigned bool, t CAType) (InstallResult, []Event) {
	if full, why := s.isFull(); full {
		s.log.Warn("install_ca_certificate rejected: store full", "domain", t, "why", why)
		return InstallStoreFull, nil
	}
	// The checks go in the order of every command that verifies: nothing to anchor the
	// certificate to, then its dates, then the rest (its signature).
	v := s.readCAsExact()
	unsigned := !selfSigned && len(v.all.Issuers(c)) == 0
	if unsigned && !certs.NamesEqual(c.RawSubject, c.RawIssuer) && !hasNamedIssuer(v.all, c) {
		s.log.Warn("install_ca_certificate rejected: issuer not installed in any domain", "domain", t, "subject", c.Subject.String(), "issuer", c.Issuer.String())
		return InstallNoRootCertificate, nil
	}
	if s.now().After(c.NotAfter) {
		s.log.Warn("install_ca_certificate rejected: expired", "domain", t, "subject", c.Subject.String(), "not_after", c.NotAfter)
		return InstallExpired, nil
	}
	if unsigned {
		s.log.Warn("install_ca_certificate rejected: signature does not verify", "domain", t, "subject", c.Subject.String())
		return InstallInvalidSignature, nil
	}
	b := v.bundles[t]
	if b.contains(certs.FingerprintOf(c)) {
		s.log.Info("install_ca_certificate: already installed", "domain", t, "subject", c.Subject.String())
		return InstallAccepted, []Event{{Kind: EventInstall, Operation: OperationInstalled, CAType: t, Path: b.path}}
	}
	if !b.isDir && len(b.unreadable) > 0 {
		// Appending to a file that does not parse would answer Accepted for a certificate that
		// could never be read back: the whole file stays unreadable.
		s.log.Error("install_ca_certificate: the bundle file cannot be read or parsed; not writing to it", "domain", t, "path", b.path)
		return InstallWriteError, nil
	}
	path, err := s.addToBundle(b, c, selfSigned)
	if err != nil {
		s.log.Error("install_ca_certificate: write failed", "domain", t, "err", err)
		return InstallWriteError, nil
	}
	if b.isDir {
		s.refreshDerived(b.path)
	}
	s.log.Info("installed CA certificate", "domain", t, "subject", c.Subject.String(), "path", path)
	return InstallAccepted, []Event{{Kind: EventInstall, Operation: OperationInstalled, CAType: t, Path: path}}
}

// hasNamedIssuer reports whether the pool holds a certificate that claims to be c's issuer: its
// subject is c's issuer name and its key identifier does not contradict c's authority key
// identifier. Then c's failure to chain is a bad signature, not a missing issuer. A CA that only
// shares the name (a new root with the old root's DN and another key) is not such a claim: c's
// issuer is then simply not installed.
func hasNamedIssuer(p *certs.Pool, c *x509.Certificate) bool {
	for _, cand := range p.Certificates() {
		if !certs.NamesEqual(cand.RawSubject, c.RawIssuer) {
			continue
		}
		if len(c.AuthorityKeyId) > 0 && len(cand.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, cand.SubjectKeyId) {
			continue
		}
		return true
	}
	return false
}

// IsCACertificateInstalled reports whether domain t has a trust anchor that is valid now: a
// self-signed root, or a CA certificate whose issuer the domain does not hold (a partial chain).
func (s *Store) IsCACertificateInstalled(t CAType) bool {
	if !t.Valid() {
		return false
	}
	unlock := s.lock.rlock()
	defer unlock()
	v := s.readCAs()
	pool := v.domainPool(t)
	now := s.now()
	for _, c := range pool.Certificates() {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			continue
		}
		if pool.IsSelfSigned(c) || len(pool.Issuers(c)) == 0 {
			return true
		}
	}
	return false
}

// HashDataChain is the interface's CertificateHashDataChain.
type HashDataChain struct {
	CertificateType CertificateType  `json:"certificate_type"`
	HashData        certs.HashData   `json:"certificate_hash_data"`
	Children        []certs.HashData `json:"child_certificate_hash_data"`
}

// InstalledCertificates is the interface's GetInstalledCertificatesResult.
type InstalledCertificates struct {
	Status InstalledStatus `json:"status"`
	Chains []HashDataChain `json:"certificate_hash_data_chain"`
}

// GetInstalledCertificates lists the certificates of the requested types. For a root type, one
// chain per top certificate of the domain (a self-signed root, or a CA whose issuer is in another
// domain) with everything it issued in that domain below it, depth first; expired and not yet
// valid certificates are listed too, so every stored certificate can be named and deleted.
// V2GCertificateChain lists the station's SECC leaves, each with its sub-CAs, leaf first.
// Status is Accepted when at least one chain was found. A type asked for twice is listed once.
// The answer is kept until the store changes and is shared by later calls: callers must not
// modify it.
func (s *Store) GetInstalledCertificates(types []CertificateType) InstalledCertificates {
	unlock := s.lock.rlock()
	defer unlock()
	v := s.readCAs()
	types = distinctTypes(types)
	var ls *leafSet
	for _, ct := range types {
		if ct == V2GCertificateChain {
			ls = s.readLeaves(LeafV2G)
		}
	}
	key := installedKey(types)
	if res, ok := v.installedFor(ls, key); ok {
		return res
	}
	res := InstalledCertificates{Status: InstalledNotFound, Chains: []HashDataChain{}}
	for _, ct := range types {
		if d, ok := ct.Domain(); ok {
			res.Chains = append(res.Chains, v.rootChains(d, ct)...)
		}
	}
	if ls != nil {
		res.Chains = append(res.Chains, s.leafChains(v, ls)...)
	}
	if len(res.Chains) > 0 {
		res.Status = InstalledAccepted
	}
	// Kept for as long as the store does not change: without the slack of appending.
	res.Chains = append(make([]HashDataChain, 0, len(res.Chains)), res.Chains...)
	v.keepInstalled(ls, key, res)
	return res
}

// rootChains lists the top certificates of domain d with their descendants, in the reference's
// order (see listingRank): top certificates last file first, last certificate of a file first;
// each one's descendants depth first.
func (v *caView) rootChains(d CAType, ct CertificateType) []HashDataChain {
	pool := v.domainPool(d)
	type listed struct {
		top   *x509.Certificate
		chain HashDataChain
	}
	var tops []listed
	// Every copy counts, as in the reference: a certificate a bundle holds twice is listed once,
	// at the first place the reference lists it.
	rank := listingRank(pool, v.bundleCerts(d))
	for _, c := range pool.Certificates() {
		if !pool.IsSelfSigned(c) && len(pool.Issuers(c)) > 0 {
			continue
		}
		h, ok := v.all.HashData(c, certs.SHA256)
		if !ok {
			v.s.log.Warn("CA certificate without a known issuer cannot be listed", "domain", d, "subject", c.Subject.String())
			continue
		}
		chain := HashDataChain{CertificateType: ct, HashData: h, Children: []certs.HashData{}}
		ds := pool.Descendants(c)
		sortByRank(ds, rank, func(c *x509.Certificate) *x509.Certificate { return c })
		for _, child := range ds {
			if ch, ok := v.all.HashData(child, certs.SHA256); ok {
				chain.Children = append(chain.Children, ch)
			}
		}
		tops = append(tops, listed{c, chain})
	}
	sortByRank(tops, rank, func(l listed) *x509.Certificate { return l.top })
	out := make([]HashDataChain, len(tops))
	for i, l := range tops {
		out[i] = l.chain
	}
	return out
}

// GetCountOfInstalledCertificates counts the certificates of the requested types: every
// certificate of each distinct bundle, and for V2GCertificateChain every certificate in the SECC
// leaf directory.
func (s *Store) GetCountOfInstalledCertificates(types []CertificateType) int {
	unlock := s.lock.rlock()
	defer unlock()
	n := 0
	seen := map[string]bool{}
	for _, ct := range types {
		if d, ok := ct.Domain(); ok {
			p := s.cfg.CABundlePath(d)
			if seen[p] {
				continue
			}
			seen[p] = true
			for _, f := range s.readBundle(d).files {
				n += len(f.certs)
			}
		} else if ct == V2GCertificateChain {
			dir, _, _ := s.cfg.LeafDirs(LeafV2G)
			paths, _ := s.listDir(dir)
			for _, f := range s.loadFiles(s.dropAliases(paths)) {
				n += len(f.certs)
			}
		}
	}
	return n
}

// VerifyCertificate verifies a PEM chain (leaf first, then any intermediates) against the trust
// anchors of the domains of the given leaf types, at the store's current time. Every certificate
// of the chain must be valid now; cross-signed roots and partial chains are followed.
func (s *Store) VerifyCertificate(chainPEM string, types []LeafType) ValidationResult {
	if s.tooLarge("verify_certificate", chainPEM) {
		return ValidationUnknown
	}
	// No domain to verify against is IssuerNotFound before the input is looked at, as in the
	// reference (it maps the types first), so an unparsable chain with no types is not Unknown.
	domains := leafDomains(types)
	if len(domains) == 0 {
		s.log.Info("verify_certificate: no known leaf type, nothing to verify against", "types", types)
		return ValidationIssuerNotFound
	}
	cs, err := certs.ParseCertificates([]byte(chainPEM))
	if err != nil || len(cs) == 0 {
		s.log.Warn("verify_certificate: no certificate in input", "err", err)
		return ValidationUnknown
	}
	unlock := s.lock.rlock()
	v := s.readCAs()
	unlock()
	_, verr := certs.Verify(cs[0], certs.VerifyOptions{
		Trusted:       v.domainPool(domains...),
		Intermediates: cs[1:],
		Time:          s.now(),
	})
	if verr != nil {
		s.log.Info("verify_certificate: chain rejected", "domains", domains, "err", verr)
	}
	return ValidationResult(certs.ReasonOf(verr))
}

// leafDomains maps leaf types to their domains, each once, in request order; unknown types are
// skipped.
func leafDomains(types []LeafType) []CAType {
	var out []CAType
	seen := map[CAType]bool{}
	for _, t := range types {
		if !t.Valid() {
			continue
		}
		d := t.Domain()
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// installResultOf maps a verification failure onto install_ca_certificate and
// update_leaf_certificate's result enum: the one table for that mapping.
func installResultOf(err error) InstallResult {
	switch certs.ReasonOf(err) {
	case certs.ReasonValid:
		return InstallAccepted
	case certs.ReasonExpired:
		return InstallExpired
	case certs.ReasonInvalidSignature, certs.ReasonInvalidLeafSig:
		return InstallInvalidSignature
	case certs.ReasonInvalidChain:
		return InstallInvalidCertificateChain
	case certs.ReasonIssuerNotFound:
		return InstallNoRootCertificate
	default:
		return InstallInvalidFormat
	}
}

var errNotFound = errors.New("not found")

// describe names a certificate in logs without leaking anything secret.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%s (serial %s)", certs.NameString(c.RawSubject), certs.SerialHex(c.SerialNumber))
}
