package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Reason says why a chain failed to verify. The values are the strings of the interface's
// CertificateValidationResult, so the mapping onto the wire is the identity; other result enums
// (InstallCertificateResult) map from Reason in one table in the store.
type Reason string

// The reasons a verification fails. ReasonValid is never carried by an error; it is what callers
// report when Verify returns nil.
const (
	ReasonValid            Reason = "Valid"
	ReasonExpired          Reason = "Expired"
	ReasonInvalidSignature Reason = "InvalidSignature"
	ReasonIssuerNotFound   Reason = "IssuerNotFound"
	ReasonInvalidLeafSig   Reason = "InvalidLeafSignature"
	ReasonInvalidChain     Reason = "InvalidChain"
	ReasonUnknown          Reason = "Unknown"
)

// VerifyError is the error Verify returns: the reason, the certificate it concerns (nil when
// none applies) and a sentence for the log.
type VerifyError struct {
	Reason Reason
	Cert   *x509.Certificate
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Cert != nil {
		return fmt.Sprintf("%s: %s (subject %q)", e.Reason, e.Detail, e.Cert.Subject.String())
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
}

// ReasonOf returns the Reason of a Verify error, ReasonValid for nil and ReasonUnknown for any
// other error.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonValid
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ReasonUnknown
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Trusted holds the trust material (the certificates of the domains asked for). A trusted
	// certificate is a trust anchor when it is self-signed or when no other trusted certificate
	// issued it (a partial chain, e.g. a sub-CA installed without its root); a trusted
	// certificate whose issuer is also trusted is only a path element, so the chain goes on to
	// that issuer and the issuer's validity counts, as with `openssl verify`.
	Trusted *Pool
	// Intermediates are untrusted certificates offered by the peer to complete the path.
	// Self-signed ones are dropped: a caller can never bring its own trust anchor.
	Intermediates []*x509.Certificate
	// IntermediatePool, when set, is used instead of Intermediates: a caller that verifies many
	// leaves with the same sub-CAs builds the pool once. A self-signed member never becomes an
	// anchor through it (only Trusted holds anchors).
	IntermediatePool *Pool
	// Time is the verification time; zero means time.Now(). Every certificate of the chain must
	// be inside its validity period at that time.
	Time time.Time
	// AllowFutureLeaf accepts a leaf that is not valid yet (a leaf installed ahead of its
	// start, or under a new root during root rollover). The CAs above it must then be unexpired
	// now and valid when the leaf starts.
	AllowFutureLeaf bool
	// MaxDepth limits the number of certificates in a chain; zero means 16.
	MaxDepth int
}

// maxSignatureChecks bounds the work of one path search, so that a hostile bundle of
// cross-signed look-alikes cannot make verification exponential.
const maxSignatureChecks = 4096

// Verify builds a chain from leaf to a trust anchor of opts.Trusted and checks it. It returns
// the chain (leaf first, anchor last) or a *VerifyError. When several paths exist (cross-signed
// roots), any path that checks out is enough; when none does, the error of the path that came
// closest is returned: an expired certificate on a complete path before a CA that breaks the
// rules, before a bad signature, before a missing issuer.
func Verify(leaf *x509.Certificate, opts VerifyOptions) ([]*x509.Certificate, error) {
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	maxDepth := opts.MaxDepth
	if maxDepth <= 0 {
		maxDepth = 16
	}
	trusted := opts.Trusted
	if trusted == nil {
		trusted = NewPool()
	}
	// The order of the checks is the meaning of the reasons: with no trust material at all
	// there is nothing to trust the chain with (IssuerNotFound, as the reference answers for an
	// empty trusted set, whatever the dates); then dates (the leaf's before any path is built,
	// as the reference does, so an expired leaf is Expired whatever else is wrong); then the
	// rest.
	if trusted.Len() == 0 {
		return nil, &VerifyError{ReasonIssuerNotFound, leaf, "no trust anchor installed for the requested domains"}
	}
	if now.After(leaf.NotAfter) {
		return nil, &VerifyError{ReasonExpired, leaf, "certificate expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)}
	}
	if now.Before(leaf.NotBefore) && !opts.AllowFutureLeaf {
		return nil, &VerifyError{ReasonExpired, leaf, "certificate is not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)}
	}
	if !trusted.Contains(leaf) && IsSelfSigned(leaf) {
		return nil, &VerifyError{ReasonUnknown, leaf, "self-signed certificate is not a trusted anchor"}
	}

	var untrusted []*x509.Certificate
	for _, c := range opts.Intermediates {
		if !IsSelfSigned(c) {
			untrusted = append(untrusted, c)
		}
	}
	untrustedPool := opts.IntermediatePool
	if untrustedPool == nil {
		untrustedPool = NewPool(untrusted...)
	}
	s := &pathSearch{
		trusted:   trusted,
		untrusted: untrustedPool,
		now:       now,
		future:    opts.AllowFutureLeaf && now.Before(leaf.NotBefore),
		maxDepth:  maxDepth,
	}
	if chain := s.search([]*x509.Certificate{leaf}); chain != nil {
		return chain, nil
	}
	if s.best == nil {
		return nil, &VerifyError{ReasonIssuerNotFound, leaf, "issuer not found"}
	}
	return nil, s.best
}

type pathSearch struct {
	trusted, untrusted *Pool
	now                time.Time
	future             bool
	maxDepth           int
	checks             int
	best               *VerifyError
}

// rank orders failures by how close the path came to verifying.
func rank(r Reason) int {
	switch r {
	case ReasonExpired:
		return 5
	case ReasonUnknown:
		return 4
	case ReasonInvalidChain:
		return 3
	case ReasonInvalidSignature:
		return 2
	default:
		return 1
	}
}

func (s *pathSearch) fail(e *VerifyError) {
	if s.best == nil || rank(e.Reason) > rank(s.best.Reason) {
		s.best = e
	}
}

// isAnchor reports whether c ends a path: it is trusted, and either self-signed or not issued by
// any other trusted certificate.
func (s *pathSearch) isAnchor(c *x509.Certificate) bool {
	if !s.trusted.Contains(c) {
		return false
	}
	return s.trusted.IsSelfSigned(c) || len(s.trusted.Issuers(c)) == 0
}

func (s *pathSearch) search(path []*x509.Certificate) []*x509.Certificate {
	top := path[len(path)-1]
	if s.isAnchor(top) {
		if err := s.check(path); err != nil {
			s.fail(err)
			return nil
		}
		return path
	}
	if len(path) >= s.maxDepth {
		s.fail(&VerifyError{ReasonInvalidChain, top, fmt.Sprintf("chain longer than %d certificates", s.maxDepth)})
		return nil
	}
	topFP := FingerprintOf(top)
	topIssuer := canonicalKey(top.RawIssuer)
	candidates, signers := 0, 0
	for _, pool := range []*Pool{s.trusted, s.untrusted} {
		for _, e := range pool.issuerCandidates(top, topIssuer) {
			if e.fp == topFP || inPath(path, e.fp) {
				continue
			}
			candidates++
			if s.checks++; s.checks > maxSignatureChecks {
				s.fail(&VerifyError{ReasonInvalidChain, top, "too many candidate issuers"})
				return nil
			}
			if !pool.signedBy(top, topFP, e) {
				continue
			}
			signers++
			if chain := s.search(append(path[:len(path):len(path)], e.cert)); chain != nil {
				return chain
			}
		}
	}
	// A bad signature is only the verdict when no candidate signed top; when one did, the path
	// above it failed and that failure (recorded by the recursive call) is the reason. Recording
	// InvalidSignature here too would outrank a missing root further up, and a leaf whose sub-CA
	// lacks its root would come back InvalidSignature instead of IssuerNotFound.
	if signers > 0 {
		return nil
	}
	if candidates > 0 {
		s.fail(&VerifyError{ReasonInvalidSignature, top, "signature does not verify with the key of any certificate named as its issuer"})
	} else {
		s.fail(&VerifyError{ReasonIssuerNotFound, top, "issuer not found"})
	}
	return nil
}

func inPath(path []*x509.Certificate, fp Fingerprint) bool {
	for _, c := range path {
		if FingerprintOf(c) == fp {
			return true
		}
	}
	return false
}

// check applies to a built chain the validity of every certificate at the verification time and
// then the rules OpenSSL applies (reference §10.4): dates before the rest, so an expired sub-CA
// that also breaks a rule is Expired.
func (s *pathSearch) check(path []*x509.Certificate) *VerifyError {
	leaf := path[0]
	for i, c := range path {
		if s.now.After(c.NotAfter) {
			return &VerifyError{ReasonExpired, c, "certificate expired on " + c.NotAfter.UTC().Format(time.RFC3339)}
		}
		start := s.now
		if i > 0 && s.future {
			start = leaf.NotBefore
			if start.After(c.NotAfter) {
				// The CA is gone before the leaf starts: the leaf can never verify.
				return &VerifyError{ReasonExpired, c, "certificate expires on " + c.NotAfter.UTC().Format(time.RFC3339) + ", before the leaf becomes valid"}
			}
		} else if i == 0 && s.future {
			continue
		}
		if start.Before(c.NotBefore) {
			return &VerifyError{ReasonExpired, c, "certificate is not valid before " + c.NotBefore.UTC().Format(time.RFC3339)}
		}
	}
	for _, c := range path {
		if len(c.UnhandledCriticalExtensions) > 0 {
			return &VerifyError{ReasonUnknown, c, fmt.Sprintf("unhandled critical extension %v", c.UnhandledCriticalExtensions[0])}
		}
	}
	for i := 1; i < len(path); i++ {
		c := path[i]
		anchor := i == len(path)-1
		switch {
		case c.BasicConstraintsValid && c.IsCA:
		case anchor && !c.BasicConstraintsValid && (c.Version < 3 || c.KeyUsage&x509.KeyUsageCertSign != 0):
			// OpenSSL accepts a v1 root, or a root without basicConstraints that may sign
			// certificates, as trust anchor.
		default:
			return &VerifyError{ReasonUnknown, c, "issuer is not a CA certificate"}
		}
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return &VerifyError{ReasonUnknown, c, "issuer's key usage does not allow signing certificates"}
		}
		if c.BasicConstraintsValid && c.MaxPathLen >= 0 && i-1 > c.MaxPathLen {
			return &VerifyError{ReasonUnknown, c, fmt.Sprintf("path length constraint %d exceeded", c.MaxPathLen)}
		}
	}
	return nil
}
