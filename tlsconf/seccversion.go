package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"time"

	"github.com/evsesec/evsesec/store"
)

// TLS13Leaves says which SECC leaves a TLS 1.3 handshake may be served.
type TLS13Leaves int

const (
	// TLS13PreferV2G20 (the zero value) serves a V2G20 leaf, and a V2G leaf when no V2G20 leaf
	// is usable: what the config served TLS 1.3 cars before V2G20 leaves existed, so a station
	// with -2 leaves only works as it did.
	TLS13PreferV2G20 TLS13Leaves = iota
	// TLS13OnlyV2G20 serves V2G20 leaves only, as ISO 15118-20 requires: without one the
	// handshake fails with a *LeafError of type V2G20.
	TLS13OnlyV2G20
)

// seccSource is the leaf source of one SECC leaf kind.
func seccSource(st *store.Store, lt store.LeafType, opts SECCOptions, log *slog.Logger, maxAge time.Duration) *leafSource {
	q := store.LeafQuery{SeccID: opts.SeccID}
	return &leafSource{
		lt: lt,
		fetch: func() ([]store.CertificateInfo, store.InfoStatus) {
			res := st.AllValidCertificatesInfoFor(lt, store.EncodingPEM, true, q)
			return res.Info, res.Status
		},
		build: builder{
			loadKey: opts.LoadKey,
			domain:  func() ([]*x509.Certificate, error) { return domainCertificates(st, store.CAV2G) },
			staple:  true,
			log:     log,
		},
		events: opts.Events,
		maxAge: maxAge,
		log:    log,
	}
}

// versionPicker hands each handshake the candidates of the leaf kind its TLS version needs.
type versionPicker struct {
	v2, v20        *leafSource
	tls13          TLS13Leaves
	minVer, maxVer uint16
	log            *slog.Logger
}

// negotiatedVersion is the version crypto/tls will agree with this ClientHello: the first of the
// client's versions, in its order, that the config allows (crypto/tls's mutualVersion). A
// ClientHello without supported_versions has had them filled in from its legacy version.
func (p *versionPicker) negotiatedVersion(hello *tls.ClientHelloInfo) uint16 {
	for _, v := range hello.SupportedVersions {
		if v >= p.minVer && v <= p.maxVer {
			return v
		}
	}
	return 0
}

// candidates are the leaves for the handshake of hello, preferred first, or a *LeafError naming
// the version and the missing kind.
func (p *versionPicker) candidates(hello *tls.ClientHelloInfo, now time.Time) ([]*candidate, error) {
	if p.negotiatedVersion(hello) != tls.VersionTLS13 {
		cands, err := p.v2.candidates(now)
		if err != nil {
			return nil, p.explain(err, store.LeafV2G, now, "a TLS 1.2 (ISO 15118-2) handshake needs a V2G leaf; V2G20 leaves serve TLS 1.3 only")
		}
		return cands, nil
	}
	cands20, err20 := p.v20.candidates(now)
	if err20 == nil {
		if p.tls13 == TLS13OnlyV2G20 {
			return cands20, nil
		}
		// A car naming only a -2 root still finds its leaf; choose prefers the -20 ones.
		if cands2, err := p.v2.candidates(now); err == nil {
			return append(append([]*candidate{}, cands20...), cands2...), nil
		}
		return cands20, nil
	}
	if p.tls13 == TLS13OnlyV2G20 {
		return nil, p.explain(err20, store.LeafV2G20, now, "a TLS 1.3 (ISO 15118-20) handshake needs a V2G20 leaf")
	}
	cands2, err2 := p.v2.candidates(now)
	if err2 != nil {
		return nil, &LeafError{Type: store.LeafV2G20, Status: statusOf(err20), Err: errors.Join(err20, err2)}
	}
	p.log.Info("no usable V2G20 leaf; serving a V2G leaf over TLS 1.3", "reason", err20)
	return cands2, nil
}

// explain wraps the failure of kind lt with why this version needs that kind, keeping the
// store's status, so the handshake error says what to install.
func (p *versionPicker) explain(err error, lt store.LeafType, now time.Time, why string) error {
	other := p.v20
	if lt == store.LeafV2G20 {
		other = p.v2
	}
	detail := errors.New(why)
	if _, oerr := other.candidates(now); oerr == nil {
		detail = errors.New(why + "; the store has only " + string(other.lt) + " leaves usable")
	}
	return &LeafError{Type: lt, Status: statusOf(err), Err: errors.Join(detail, errors.Unwrap(err))}
}

// statusOf is the status of a *LeafError, NotFoundValid for any other error.
func statusOf(err error) store.InfoStatus {
	var le *LeafError
	if errors.As(err, &le) {
		return le.Status
	}
	return store.InfoNotFoundValid
}
