package tlsconf

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/store"
)

// KeyLoader opens the content of a leaf's key file as a crypto.Signer. The method value Signer
// of any keys.Backend is one: keys.FileBackend{Password: pw}.Signer for software keys today, the
// TPM and PKCS#11 backends' later. The signer is used for TLS handshakes, so it must be safe for
// concurrent use.
type KeyLoader func(keyFile []byte) (crypto.Signer, error)

// candidate is one leaf, loaded and ready to serve.
type candidate struct {
	cert   tls.Certificate     // leaf and sub-CAs with key and, if cached, the OCSP staple
	bare   tls.Certificate     // the same without the staple, served once the staple is stale
	chain  []*x509.Certificate // as served: leaf first, then sub-CAs (the anchor too if not a root)
	anchor *x509.Certificate   // the trust anchor the store verified the leaf up to
	// stapleUntil is when the staple stops being acceptable (certs.OCSPUsableUntil: its nextUpdate,
	// or its delegated responder's end); zero when there is no staple or no limit.
	stapleUntil time.Time
	// cas are the CA certificates above the leaf (served sub-CAs and the anchor), for matching the
	// trusted CA indications of a ClientHello.
	cas []caID
}

// builder turns the store's CertificateInfo into a candidate.
type builder struct {
	loadKey KeyLoader // nil: the file backend with the store's key password
	// domain returns the certificates of the leaf's trust domain, to complete a chain whose file
	// holds the leaf alone.
	domain func() ([]*x509.Certificate, error)
	// staple: attach the cached OCSP response of the leaf.
	staple bool
	log    *slog.Logger
}

// build loads the chain, the key and the staple that info names, checking the chain at now.
// The error is a *LeafError: PrivateKeyNotFound when the key is the problem, NotFoundValid when
// the certificates are.
func (b builder) build(info store.CertificateInfo, lt store.LeafType, now time.Time) (*candidate, error) {
	fail := func(st store.InfoStatus, format string, args ...any) error {
		return &LeafError{Type: lt, Status: st, Err: fmt.Errorf(format, args...)}
	}
	chainPath := info.Certificate
	if chainPath == "" {
		chainPath = info.CertificateSingle
	}
	data, err := os.ReadFile(chainPath)
	if err != nil {
		return nil, fail(store.InfoNotFoundValid, "reading the certificate: %w", err)
	}
	cs, err := certs.ParseCertificates(data)
	if err != nil || len(cs) == 0 {
		return nil, fail(store.InfoNotFoundValid, "%s holds no readable certificate (%v)", chainPath, err)
	}
	leaf := cs[0]
	roots, err := certs.ParseCertificates([]byte(info.CertificateRoot))
	if err != nil || len(roots) == 0 {
		return nil, fail(store.InfoNotFoundValid, "the store named no trust anchor for %s", describe(leaf))
	}
	c := &candidate{anchor: roots[0]}
	path, err := b.path(cs, c.anchor, now)
	if err != nil {
		return nil, fail(store.InfoNotFoundValid, "the chain of %s: %w", describe(leaf), err)
	}
	// Serve the leaf and the sub-CAs, and the anchor only when it is itself a sub-CA (installed
	// as a partial chain), whose root the peer may know; a root the peer has anyway (RFC 8446
	// §4.4.2 lets it be left out, ISO 15118-2 sends the chain without it).
	c.chain = path
	if len(path) > 1 && certs.IsSelfSigned(c.anchor) {
		c.chain = path[:len(path)-1]
	}
	for _, x := range path[1:] {
		c.cas = append(c.cas, newCAID(x))
	}

	keyData, err := os.ReadFile(info.Key)
	if err != nil {
		return nil, fail(store.InfoPrivateKeyNotFound, "reading the key of %s: %w", describe(leaf), err)
	}
	load := b.loadKey
	if load == nil {
		load = keys.FileBackend{Password: []byte(info.Password)}.Signer
	}
	signer, err := load(keyData)
	if err != nil {
		return nil, fail(store.InfoPrivateKeyNotFound, "opening the key %s: %w", info.Key, err)
	}
	if !keys.Matches(leaf, signer.Public()) {
		return nil, fail(store.InfoPrivateKeyNotFound, "the key %s does not belong to %s", info.Key, describe(leaf))
	}

	c.cert = tls.Certificate{PrivateKey: signer, Leaf: leaf}
	for _, x := range c.chain {
		c.cert.Certificate = append(c.cert.Certificate, x.Raw)
	}
	c.bare = c.cert
	if b.staple {
		c.attachStaple(info, now, b.log)
	}
	return c, nil
}

// path builds the verified chain from the leaf (file[0]) to anchor at now, with the file's other
// certificates as path elements and, when those are not enough (a file holding the leaf alone),
// the certificates of the trust domain, where the store found the sub-CAs.
func (b builder) path(file []*x509.Certificate, anchor *x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	opts := certs.VerifyOptions{Trusted: certs.NewPool(anchor), Intermediates: file[1:], Time: now}
	path, err := certs.Verify(file[0], opts)
	if certs.ReasonOf(err) == certs.ReasonIssuerNotFound && b.domain != nil {
		domain, derr := b.domain()
		if derr != nil {
			return nil, derr
		}
		opts.Intermediates = append(slices.Clone(file[1:]), domain...)
		path, err = certs.Verify(file[0], opts)
	}
	return path, err
}

// validAt checks every certificate the candidate serves, and its anchor, at now: the store
// selected the leaf at its own time, and a cached candidate may have expired since.
func (c *candidate) validAt(now time.Time) error {
	check := func(x *x509.Certificate) error {
		switch {
		case now.Before(x.NotBefore):
			return fmt.Errorf("%s is not valid before %s", describe(x), x.NotBefore.UTC().Format(time.RFC3339))
		case now.After(x.NotAfter):
			return fmt.Errorf("%s expired on %s", describe(x), x.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil
	}
	for _, x := range c.chain {
		if err := check(x); err != nil {
			return err
		}
	}
	return check(c.anchor)
}

// at returns the certificate to present at now: with the staple while it is current.
func (c *candidate) at(now time.Time) *tls.Certificate {
	if c.cert.OCSPStaple != nil && !c.stapleUntil.IsZero() && now.After(c.stapleUntil) {
		return &c.bare
	}
	return &c.cert
}

// describe names a certificate for errors and logs.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %s)", c.Subject.CommonName, certs.SerialHex(c.SerialNumber))
}
