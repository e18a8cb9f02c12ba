package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// systemRoots is x509.SystemCertPool; tests replace it.
var systemRoots = x509.SystemCertPool

// domainCertificates reads the certificates of trust domain ct from the store's verify file (the
// bundle file, or the combined file of a bundle directory). An empty domain gives none.
func domainCertificates(st *store.Store, ct store.CAType) ([]*x509.Certificate, error) {
	path := st.GetVerifyFile(ct)
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the %s trust anchors: %w", ct, err)
	}
	cs, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("reading the %s trust anchors from %s: %w", ct, path, err)
	}
	return cs, nil
}

// anchors keeps a trust domain as an x509.CertPool, rebuilt on the domain's store events and
// after maxAge, like leafSource.
type anchors struct {
	st     *store.Store
	ct     store.CAType
	system bool // start from the system's roots
	events *Events
	maxAge time.Duration

	mu      sync.Mutex
	gen     uint64
	builtAt time.Time
	pool    *x509.CertPool
}

// get returns the pool; ErrNoTrustAnchor when it would be empty.
func (a *anchors) get() (*x509.CertPool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	gen := a.events.generation("", a.ct)
	if a.pool != nil && gen == a.gen && a.maxAge > 0 && time.Since(a.builtAt) < a.maxAge {
		return a.pool, nil
	}
	a.pool = nil
	cs, err := domainCertificates(a.st, a.ct)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if a.system {
		if pool, err = systemRoots(); err != nil {
			return nil, fmt.Errorf("loading the system's roots: %w", err)
		}
	} else if len(cs) == 0 {
		return nil, fmt.Errorf("%w in the %s domain", ErrNoTrustAnchor, a.ct)
	}
	for _, c := range cs {
		pool.AddCert(c)
	}
	a.pool, a.gen, a.builtAt = pool, gen, time.Now()
	return pool, nil
}

// serverVerifier checks a TLS server's certificate against a trust domain at every handshake,
// as tls.Config.VerifyConnection: the chain up to an anchor of the domain at the config's time,
// the server name, the serverAuth usage, and a stapled OCSP response if the server sent one (a
// revoked status is refused).
type serverVerifier struct {
	anchors    *anchors
	serverName string
	now        func() time.Time
}

func (v *serverVerifier) verify(cs tls.ConnectionState) error {
	peer := cs.PeerCertificates
	if len(peer) == 0 {
		return errors.New("tlsconf: the server sent no certificate")
	}
	fail := func(err error) error {
		return &tls.CertificateVerificationError{UnverifiedCertificates: peer,
			Err: fmt.Errorf("%s server certificate %s: %w", v.anchors.ct, describe(peer[0]), err)}
	}
	name := v.serverName
	if name == "" {
		name = cs.ServerName
	}
	if name == "" {
		// Go sends no SNI for an IP address and then cannot tell the verifier what was dialled;
		// without a name the certificate's identity could not be checked at all.
		return fail(errors.New("no server name to check it against: set the ServerName option when connecting to an IP address"))
	}
	pool, err := v.anchors.get()
	if err != nil {
		return fail(err)
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	chains, err := peer[0].Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fail(err)
	}
	if len(cs.OCSPResponse) > 0 && len(chains[0]) > 1 {
		resp, err := ocsp.ParseResponseForCert(cs.OCSPResponse, peer[0], chains[0][1])
		if err == nil && resp.Status == ocsp.Revoked {
			return fail(fmt.Errorf("revoked on %s (stapled OCSP response)", resp.RevokedAt.UTC().Format(time.RFC3339)))
		}
	}
	return nil
}
