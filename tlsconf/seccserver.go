package tlsconf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/evsesec/evsesec/store"
)

// ISO15118CipherSuites returns the TLS 1.2 cipher suites of the SECC config, in Go's names:
//
//   - TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, the suite ISO 15118-2 requires. Go leaves it out
//     of its defaults and enables it only when listed, as here.
//   - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, an extra that ISO 15118-2 does not name: an AEAD
//     suite with the same key exchange and certificate, chosen by Go over the CBC suite when the
//     car offers both.
//
// ISO 15118-2's second suite, TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 (static ECDH), is not
// implemented by Go's crypto/tls; a car offering only that one cannot connect. TLS 1.3
// (ISO 15118-20) uses Go's TLS 1.3 suites, which include the required TLS_AES_128_GCM_SHA256 and
// TLS_AES_256_GCM_SHA384.
func ISO15118CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	}
}

// SECCOptions configure SECCServerConfig.
type SECCOptions struct {
	// MaxVersion is the highest TLS version offered: 0 means TLS 1.3 (ISO 15118-20 besides -2);
	// tls.VersionTLS12 serves ISO 15118-2 only.
	MaxVersion uint16

	// Events makes the config rebuild its cached certificates as soon as the store reports a
	// change of the V2G leaves or the V2G domain; nil leaves it to MaxAge.
	Events *Events
	// MaxAge is how long loaded certificates are reused without an event; 0 means DefaultMaxAge,
	// negative means reload at every handshake. With Events, a new OCSP response cached by this
	// process's store (update_ocsp_cache) is stapled from the next handshake on; one cached by
	// another process is stapled within MaxAge.
	MaxAge time.Duration
	// LoadKey opens the SECC leaf's key file; nil means the file backend with the store's
	// private_key_password (keys.FileBackend).
	LoadKey KeyLoader
	// Time is the clock certificates and staples are checked against; nil means time.Now. It
	// also becomes the config's Time.
	Time func() time.Time
	// Logger receives why a leaf or a staple was passed over; nil discards. Keys are never logged.
	Logger *slog.Logger

	// SeccID serves the leaves of one EVSE: the newest usable SECC leaf whose CN is SeccID (its
	// ISO15118SeccId), of each kind; with none of that CN, the station-wide choice. Empty: the
	// station-wide choice. One config per EVSE, each with its EVSE's SeccID.
	SeccID string
	// TLS13 says which leaf kind a TLS 1.3 (ISO 15118-20) handshake gets; see TLS13Leaves. TLS 1.2
	// (ISO 15118-2) handshakes always get a V2G leaf and never a V2G20 one.
	TLS13 TLS13Leaves
}

// SECCServerConfig returns the tls.Config of the station's ISO 15118 TLS server (the SECC). At
// every handshake GetCertificate serves, from the store's current state:
//
//   - a leaf of the kind the handshake's TLS version calls for: V2G (ISO 15118-2) for TLS 1.2,
//     V2G20 (ISO 15118-20) for TLS 1.3 (see SECCOptions.TLS13). The version is the one the
//     handshake will negotiate, the first of the car's supported versions the config allows,
//     which is how crypto/tls picks it (GetCertificate is not told the version itself);
//   - of that kind, the newest valid SECC leaf under each V2G root (get_all_valid_certificates_info,
//     narrowed to one EVSE by SECCOptions.SeccID): when the
//     connection was wrapped by NewHelloConn or NewHelloListener and the car named the CAs it
//     trusts (trusted_ca_keys, certificate_authorities), the newest leaf whose chain includes one
//     of them; otherwise, or when none does, the newest leaf;
//   - its chain: the leaf and the sub-CAs up to the V2G root, without the root;
//   - the cached OCSP response of the leaf as the OCSP staple, byte for byte, while it is before
//     its nextUpdate;
//   - never a certificate outside its validity period at the handshake's time, whatever is
//     cached. With no usable leaf the handshake fails with a *LeafError naming the reason.
//
// Versions are TLS 1.2 (ISO 15118-2) to opts.MaxVersion, TLS 1.3 by default (ISO 15118-20); the
// TLS 1.2 suites are ISO15118CipherSuites(). The config does not ask for a client certificate;
// for ISO 15118-20's mutual authentication set ClientAuth and ClientCAs on the result.
func SECCServerConfig(st *store.Store, opts SECCOptions) (*tls.Config, error) {
	if st == nil {
		return nil, fmt.Errorf("tlsconf: no store")
	}
	maxVersion := opts.MaxVersion
	switch maxVersion {
	case 0:
		maxVersion = tls.VersionTLS13
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, fmt.Errorf("tlsconf: SECC MaxVersion %#04x: want TLS 1.2 or TLS 1.3", maxVersion)
	}
	now, log, maxAge := defaults(opts.Time, opts.Logger, opts.MaxAge)
	pick := &versionPicker{
		v2:     seccSource(st, store.LeafV2G, opts, log, maxAge),
		v20:    seccSource(st, store.LeafV2G20, opts, log, maxAge),
		tls13:  opts.TLS13,
		minVer: tls.VersionTLS12,
		maxVer: maxVersion,
		log:    log,
	}
	getCertificate := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		t := now()
		cands, err := pick.candidates(hello, t)
		if err != nil {
			log.Error("SECC certificate unavailable", "err", err)
			return nil, err
		}
		return choose(cands, indicationsOf(hello.Conn), log).at(t), nil
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		MaxVersion:     maxVersion,
		CipherSuites:   ISO15118CipherSuites(),
		GetCertificate: getCertificate,
		Time:           opts.Time,
	}, nil
}

// choose picks the candidate for a ClientHello: the first (newest) whose chain holds a CA the
// client named, else the first.
func choose(cands []*candidate, ind caIndications, log *slog.Logger) *candidate {
	if ind.empty() {
		return cands[0]
	}
	for _, c := range cands {
		for _, id := range c.cas {
			if ind.match(id) {
				return c
			}
		}
	}
	log.Info("no SECC leaf under a CA the car named; serving the newest")
	return cands[0]
}
