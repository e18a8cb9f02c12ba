package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"sync"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding. Two certificates are the same
// certificate exactly when their fingerprints are equal.
type Fingerprint [32]byte

// FingerprintOf returns the fingerprint of c.
func FingerprintOf(c *x509.Certificate) Fingerprint { return sha256.Sum256(c.Raw) }

// Pool is a set of certificates that answers who issued whom. Certificates are linked by
// OpenSSL's canonical name comparison, by the authority/subject key identifiers where both are
// present, and by the signature; validity periods play no part, so an expired or not yet valid
// certificate keeps its place in the hierarchy (the reference loses it, see DESIGN.md §3 row 8).
//
// A Pool is safe for concurrent use. Its contents do not change after NewPool; signature checks
// are cached inside it, so a long-lived Pool pays for each link once.
type Pool struct {
	entries   []*poolEntry
	byFP      map[Fingerprint]*poolEntry
	bySubject map[string][]*poolEntry
	byIssuer  map[string][]*poolEntry

	mu        sync.Mutex
	sigCache  map[[2]Fingerprint]bool
	hashCache map[hashKey]cachedHash
}

type poolEntry struct {
	cert          *x509.Certificate
	fp            Fingerprint
	subject       string // canonical subject
	issuer        string // canonical issuer
	selfSignedSet bool
	selfSigned    bool
}

// NewPool returns a pool holding certs. Duplicates (same DER) are kept once, in first-seen order.
func NewPool(certs ...*x509.Certificate) *Pool {
	// No size hints: the certificates passed often repeat (every chain file of a leaf directory
	// carries the same sub-CAs) and a directory's leaves share one issuer, so tables sized by
	// len(certs) were several times the pool's contents: 3 of the 17 MB live after a 2,000-leaf
	// store's open and queries, and so about 6 MB of peak RSS.
	p := &Pool{
		byFP:      make(map[Fingerprint]*poolEntry),
		bySubject: make(map[string][]*poolEntry),
		byIssuer:  make(map[string][]*poolEntry),
		sigCache:  make(map[[2]Fingerprint]bool),
	}
	for _, c := range certs {
		p.add(c)
	}
	return p
}

func (p *Pool) add(c *x509.Certificate) *poolEntry {
	fp := FingerprintOf(c)
	if e, ok := p.byFP[fp]; ok {
		return e
	}
	e := &poolEntry{cert: c, fp: fp, subject: canonicalKey(c.RawSubject), issuer: canonicalKey(c.RawIssuer)}
	p.entries = append(p.entries, e)
	p.byFP[fp] = e
	p.bySubject[e.subject] = append(p.bySubject[e.subject], e)
	p.byIssuer[e.issuer] = append(p.byIssuer[e.issuer], e)
	return e
}

// canonicalKey is the canonical encoding of a raw name as a map key. A name that does not parse
// is keyed by its raw bytes with a prefix no canonical encoding can have, so it still links to
// byte-identical names.
func canonicalKey(raw []byte) string {
	if canon, err := CanonicalName(raw); err == nil {
		return string(canon)
	}
	return "\x00raw:" + string(raw)
}

// Len returns the number of distinct certificates in the pool.
func (p *Pool) Len() int { return len(p.entries) }

// Certificates returns the pool's certificates in insertion order.
func (p *Pool) Certificates() []*x509.Certificate {
	out := make([]*x509.Certificate, len(p.entries))
	for i, e := range p.entries {
		out[i] = e.cert
	}
	return out
}

// Contains reports whether the pool holds a certificate with the same DER as c.
func (p *Pool) Contains(c *x509.Certificate) bool {
	_, ok := p.byFP[FingerprintOf(c)]
	return ok
}

// IsSelfSigned reports whether c names itself as issuer (canonical comparison), its authority key
// identifier (if any) is its own subject key identifier, and its signature verifies with its own
// key. Unlike OpenSSL's X509_self_signed, the signature is checked: a self-issued certificate with
// a broken signature is no root.
func IsSelfSigned(c *x509.Certificate) bool {
	return isSelfSigned(c, canonicalKey(c.RawSubject), canonicalKey(c.RawIssuer))
}

func isSelfSigned(c *x509.Certificate, subject, issuer string) bool {
	if subject != issuer {
		return false
	}
	if len(c.AuthorityKeyId) > 0 && len(c.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
		return false
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func (p *Pool) selfSigned(e *poolEntry) bool {
	p.mu.Lock()
	done, v := e.selfSignedSet, e.selfSigned
	p.mu.Unlock()
	if done {
		return v
	}
	v = isSelfSigned(e.cert, e.subject, e.issuer)
	p.mu.Lock()
	e.selfSigned, e.selfSignedSet = v, true
	p.mu.Unlock()
	return v
}

// IsSelfSigned reports whether c (which need not be in the pool) is self-signed, using the pool's
// cache when c is a member.
func (p *Pool) IsSelfSigned(c *x509.Certificate) bool {
	if e, ok := p.byFP[FingerprintOf(c)]; ok {
		return p.selfSigned(e)
	}
	return IsSelfSigned(c)
}

// issuerCandidates are the pool members whose subject matches child's issuer and whose key
// identifier does not contradict child's authority key identifier. They have not been checked
// against child's signature yet.
func (p *Pool) issuerCandidates(child *x509.Certificate, childIssuer string) []*poolEntry {
	var out []*poolEntry
	for _, e := range p.bySubject[childIssuer] {
		if len(child.AuthorityKeyId) > 0 && len(e.cert.SubjectKeyId) > 0 && !bytes.Equal(child.AuthorityKeyId, e.cert.SubjectKeyId) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// signedBy reports whether parent's key verifies child's signature, caching the answer.
func (p *Pool) signedBy(child *x509.Certificate, childFP Fingerprint, parent *poolEntry) bool {
	key := [2]Fingerprint{childFP, parent.fp}
	p.mu.Lock()
	v, ok := p.sigCache[key]
	p.mu.Unlock()
	if ok {
		return v
	}
	v = parent.cert.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature) == nil
	p.mu.Lock()
	p.sigCache[key] = v
	p.mu.Unlock()
	return v
}

// Issuers returns every certificate of the pool that issued c: its name matches c's issuer,
// its key identifier agrees with c's authority key identifier and its key verifies c's
// signature. A cross-signed CA has several. A self-signed certificate has none: it is its own
// issuer, even when the pool holds another self-signed certificate with the same name and key (a
// root re-issued with new dates), whose key verifies its signature too.
func (p *Pool) Issuers(c *x509.Certificate) []*x509.Certificate {
	if p.IsSelfSigned(c) {
		return nil
	}
	fp := FingerprintOf(c)
	var out []*x509.Certificate
	for _, e := range p.issuerCandidates(c, canonicalKey(c.RawIssuer)) {
		if e.fp == fp {
			continue
		}
		if p.signedBy(c, fp, e) {
			out = append(out, e.cert)
		}
	}
	return out
}

// Issuer returns the first issuer of c in the pool, or nil.
func (p *Pool) Issuer(c *x509.Certificate) *x509.Certificate {
	if is := p.Issuers(c); len(is) > 0 {
		return is[0]
	}
	return nil
}

// Children returns the pool's certificates that c issued, in insertion order. Self-signed
// certificates are never children (see Issuers), so neither c itself nor a root re-issued under
// the same name and key is returned.
func (p *Pool) Children(c *x509.Certificate) []*x509.Certificate {
	cfp := FingerprintOf(c)
	parent, ok := p.byFP[cfp]
	if !ok {
		parent = &poolEntry{cert: c, fp: cfp, subject: canonicalKey(c.RawSubject)}
	}
	var out []*x509.Certificate
	for _, e := range p.byIssuer[parent.subject] {
		if e.fp == cfp {
			continue
		}
		if len(e.cert.AuthorityKeyId) > 0 && len(c.SubjectKeyId) > 0 && !bytes.Equal(e.cert.AuthorityKeyId, c.SubjectKeyId) {
			continue
		}
		if e.subject == e.issuer && p.selfSigned(e) {
			continue
		}
		if p.signedBy(e.cert, e.fp, parent) {
			out = append(out, e.cert)
		}
	}
	return out
}

// Descendants returns everything below c in the pool, depth first in pre-order (a root's
// sub-CA, then that sub-CA's children, ...). Each certificate appears once even when it is
// reachable through a cross-signed path.
func (p *Pool) Descendants(c *x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	seen := map[Fingerprint]bool{FingerprintOf(c): true}
	var walk func(*x509.Certificate)
	walk = func(n *x509.Certificate) {
		for _, ch := range p.Children(n) {
			fp := FingerprintOf(ch)
			if seen[fp] {
				continue
			}
			seen[fp] = true
			out = append(out, ch)
			walk(ch)
		}
	}
	walk(c)
	return out
}

// HashData computes c's OCPP hash data: against itself when c is self-signed, otherwise against
// its first issuer in the pool. ok is false when c is not self-signed and the pool holds no
// issuer of it (its issuer key hash cannot be known).
func (p *Pool) HashData(c *x509.Certificate, alg HashAlgorithm) (HashData, bool) {
	key := hashKey{FingerprintOf(c), alg}
	p.mu.Lock()
	h, ok := p.hashCache[key]
	p.mu.Unlock()
	if ok {
		return h.h, h.ok
	}
	res, found := p.computeHashData(c, alg)
	p.mu.Lock()
	if p.hashCache == nil {
		p.hashCache = map[hashKey]cachedHash{}
	}
	p.hashCache[key] = cachedHash{res, found}
	p.mu.Unlock()
	return res, found
}

// hashKey and cachedHash memoize HashData: a pool's contents never change, so neither does the
// hash data of a certificate against it.
type hashKey struct {
	fp  Fingerprint
	alg HashAlgorithm
}

type cachedHash struct {
	h  HashData
	ok bool
}

func (p *Pool) computeHashData(c *x509.Certificate, alg HashAlgorithm) (HashData, bool) {
	issuer := c
	if !p.IsSelfSigned(c) {
		issuer = p.Issuer(c)
		if issuer == nil {
			return HashData{}, false
		}
	}
	h, err := ComputeHashData(c, issuer, alg)
	return h, err == nil
}
