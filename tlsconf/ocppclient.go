package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/evsesec/evsesec/store"
)

// OCPPOptions configure OCPPClientConfig.
type OCPPOptions struct {
	// SecurityProfile is the OCPP security profile: 2 (TLS, server authenticated, the station by
	// basic auth) or 3 (TLS with the station's client certificate). 0 and 1 give ErrNoTLS.
	SecurityProfile int
	// UseSystemRoots also accepts servers that chain to the system's default roots, besides the
	// CSMS domain (the reference's UseSslDefaultVerifyPaths).
	UseSystemRoots bool
	// ServerName is the name the CSMS certificate must carry (DNS name or IP address) and the SNI
	// sent. Empty means the host name the connection was dialled with; set it when dialling an
	// IP address, for which Go sends no SNI and the verifier would have no name to check.
	ServerName string

	// Events makes the config rebuild its cached certificates as soon as the store reports a
	// change of the CSMS leaf or domain; nil leaves it to MaxAge.
	Events *Events
	// MaxAge is how long loaded certificates and anchors are reused without an event; 0 means
	// DefaultMaxAge, negative means reload at every handshake.
	MaxAge time.Duration
	// LoadKey opens the CSMS leaf's key file; nil means the file backend with the store's
	// private_key_password (keys.FileBackend).
	LoadKey KeyLoader
	// Time is the clock certificates are checked against; nil means time.Now. It also becomes
	// the config's Time.
	Time func() time.Time
	// Logger receives why a leaf was passed over; nil discards. Keys are never logged.
	Logger *slog.Logger
}

// OCPPClientConfig returns the tls.Config of the station's OCPP client for the security profile
// of opts. Everything it uses comes from the store at the handshake, so one config serves every
// reconnection of the station's lifetime:
//
//   - The server certificate is verified in VerifyConnection against the CSMS domain's current
//     trust anchors (and the system's roots with UseSystemRoots): chain, validity at the
//     handshake's time, server name, serverAuth usage, and a stapled OCSP response saying revoked
//     is refused. Go's built-in verification, which would use a RootCAs fixed at build time, is
//     turned off by InsecureSkipVerify; do not clear VerifyConnection.
//   - With profile 3, GetClientCertificate presents the newest valid CSMS leaf, its chain and its
//     key, as the store answers get_leaf_certificate_info at that moment, so a certificate
//     installed by update_leaf_certificate is used from the next connection on. With no usable
//     leaf the handshake fails with a *LeafError instead of continuing without a certificate.
//
// TLS 1.2 is the minimum, as OCPP requires for profiles 2 and 3; the cipher suites are Go's
// defaults, which include the ECDHE suites OCPP lists.
func OCPPClientConfig(st *store.Store, opts OCPPOptions) (*tls.Config, error) {
	switch opts.SecurityProfile {
	case 0, 1:
		return nil, fmt.Errorf("%w (profile %d)", ErrNoTLS, opts.SecurityProfile)
	case 2, 3:
	default:
		return nil, fmt.Errorf("tlsconf: unknown OCPP security profile %d (want 2 or 3)", opts.SecurityProfile)
	}
	if st == nil {
		return nil, fmt.Errorf("tlsconf: no store")
	}
	now, log, maxAge := defaults(opts.Time, opts.Logger, opts.MaxAge)
	v := &serverVerifier{
		anchors:    &anchors{st: st, ct: store.CACSMS, system: opts.UseSystemRoots, events: opts.Events, maxAge: maxAge},
		serverName: opts.ServerName,
		now:        now,
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         opts.ServerName,
		InsecureSkipVerify: true, // verified by VerifyConnection against the store's current anchors
		VerifyConnection:   v.verify,
		Time:               opts.Time,
	}
	if opts.SecurityProfile == 3 {
		src := &leafSource{
			lt: store.LeafCSMS,
			fetch: func() ([]store.CertificateInfo, store.InfoStatus) {
				res := st.GetLeafCertificateInfo(store.LeafCSMS, store.EncodingPEM, false)
				if res.Info == nil {
					return nil, res.Status
				}
				return []store.CertificateInfo{*res.Info}, res.Status
			},
			build: builder{
				loadKey: opts.LoadKey,
				domain:  func() ([]*x509.Certificate, error) { return domainCertificates(st, store.CACSMS) },
				log:     log,
			},
			events: opts.Events,
			maxAge: maxAge,
			log:    log,
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			t := now()
			cands, err := src.candidates(t)
			if err != nil {
				log.Error("OCPP client certificate unavailable", "err", err)
				return nil, err
			}
			return cands[0].at(t), nil
		}
	}
	return cfg, nil
}

// defaults fills in the optional collaborators common to both configs.
func defaults(clock func() time.Time, log *slog.Logger, maxAge time.Duration) (func() time.Time, *slog.Logger, time.Duration) {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	return clock, log, maxAge
}
