package testpki

import (
	"crypto/x509"
	"fmt"
	"time"
)

// SECC20CommonName is the CN of the standard PKI's ISO 15118-20 SECC leaf.
const SECC20CommonName = "SECC20Cert"

// EVSELeaves are the SECC leaves of one EVSE: CN its SECC-ID, so a store that selects by SECC-ID
// (OCPP 2.0.1: one SECC leaf per EVSE, CN = ISO15118SeccId) hands each EVSE its own.
type EVSELeaves struct {
	SeccID string
	// V2G is the ISO 15118-2 leaf (P-256, under CPO Sub-CA 2); V2G20 the ISO 15118-20 one
	// (P-521, under CPO-20 Sub-CA 2), nil without Options.ISO15118_20.
	V2G, V2G20 *Issued
}

// iso15118_20 makes the -20 chain: a root of its own (ISO 15118-20 has its own V2G PKI) and a
// leaf meeting Annex B, so the -2 and -20 leaves can be told apart by key and by root.
func (g *generator) iso15118_20(p *PKI, notBefore, caNotAfter, leafNotAfter time.Time, ocsp string) {
	ca := func(cn string, pathLen int, ocspURLs []string) Spec {
		return Spec{CommonName: cn, Organization: Organization, Country: Country, DomainComponent: "V2G",
			IsCA: true, MaxPathLen: pathLen, NotBefore: notBefore, NotAfter: caNotAfter, KeyAlgorithm: KeyP521,
			OCSPURLs: ocspURLs}
	}
	p.V2G20Root = g.selfSigned("V2G-20 root", ca("V2G20RootCA", -1, nil))
	p.CPO20SubCA1 = g.issue("CPO-20 Sub-CA 1", p.V2G20Root, ca("CPO20SubCA1", 1, []string{ocsp}))
	p.CPO20SubCA2 = g.issue("CPO-20 Sub-CA 2", p.CPO20SubCA1, ca("CPO20SubCA2", 0, []string{ocsp}))
	p.SECC20Leaf = g.issue("SECC-20 leaf", p.CPO20SubCA2, secc20Spec(SECC20CommonName, notBefore, leafNotAfter, ocsp))
}

// secc20Spec is an ISO 15118-20 Annex B SECC leaf: DC=CSO, digitalSignature only, P-521.
func secc20Spec(cn string, notBefore, notAfter time.Time, ocsp string) Spec {
	return Spec{CommonName: cn, Organization: Organization, Country: Country, DomainComponent: "CSO",
		NotBefore: notBefore, NotAfter: notAfter, KeyAlgorithm: KeyP521,
		KeyUsage: x509.KeyUsageDigitalSignature, OCSPURLs: []string{ocsp}}
}

// evses makes the per-EVSE leaves of ids.
func (g *generator) evses(p *PKI, ids []string, notBefore, leafNotAfter time.Time, ocsp string) {
	seen := map[string]bool{}
	for _, id := range ids {
		if g.err != nil {
			return
		}
		if err := checkSeccID(id); err != nil {
			g.err = err
			return
		}
		if seen[id] {
			g.err = fmt.Errorf("testpki: SECC-ID %q given twice", id)
			return
		}
		seen[id] = true
		ev := EVSELeaves{SeccID: id}
		spec := Spec{CommonName: id, Organization: Organization, Country: Country, DomainComponent: "CPO",
			NotBefore: notBefore, NotAfter: leafNotAfter, KeyAlgorithm: KeyP256, OCSPURLs: []string{ocsp}}
		ev.V2G = g.issue("SECC leaf of EVSE "+id, p.CPOSubCA2, spec)
		if p.CPO20SubCA2 != nil {
			ev.V2G20 = g.issue("SECC-20 leaf of EVSE "+id, p.CPO20SubCA2, secc20Spec(id, notBefore, leafNotAfter, ocsp))
		}
		p.EVSEs = append(p.EVSEs, ev)
	}
}

// checkSeccID accepts what can be a CN and a file name alike. ISO 15118-20's SECCID is
// alphanumeric (with optional '-' separators); '_' and '.' are allowed for test names.
func checkSeccID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("testpki: SECC-ID %q: want 1 to 64 characters", id)
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("testpki: SECC-ID %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	if id[0] == '.' {
		return fmt.Errorf("testpki: SECC-ID %q must not start with '.'", id)
	}
	return nil
}

// v2gRoots are the roots the V2G bundle holds: the -2 root, and the -20 root when there is one.
func (p *PKI) v2gRoots() []*Issued {
	if p.V2G20Root != nil {
		return []*Issued{p.V2GRoot, p.V2G20Root}
	}
	return []*Issued{p.V2GRoot}
}

// layout20 adds the files of the -20 chain and of the per-EVSE leaves to a layout: cert, key
// and pair are WriteLayout's.
func (p *PKI) layout20(l *Layout, cert func(rel string, dst *string, what string, certs ...*Issued),
	key func(rel string, dst *string, what string, i *Issued), pair func(name string, certDst, keyDst *string, what string, i *Issued)) {
	if p.SECC20Leaf != nil {
		cert("client/cso/SECC20_LEAF.pem", &l.SECC20LeafCert, "ISO 15118-20 SECC leaf (P-521, TLS 1.3 server certificate)", p.SECC20Leaf)
		key("client/cso/SECC20_LEAF.key", &l.SECC20LeafKey, "key of the ISO 15118-20 SECC leaf", p.SECC20Leaf)
		cert("client/cso/CPO20_CERT_CHAIN.pem", &l.SECC20Chain, "ISO 15118-20 SECC leaf, CPO-20 Sub-CA 2, CPO-20 Sub-CA 1 (no root)", p.SECC20Leaf, p.CPO20SubCA2, p.CPO20SubCA1)
		pair("V2G20_ROOT_CA", &l.V2G20RootCert, &l.V2G20RootKey, "ISO 15118-20 V2G root CA (P-521)", p.V2G20Root)
		pair("CPO20_SUB_CA1", &l.CPO20SubCA1Cert, &l.CPO20SubCA1Key, "CPO-20 Sub-CA 1 (pathlen 1), issued by the V2G-20 root", p.CPO20SubCA1)
		pair("CPO20_SUB_CA2", &l.CPO20SubCA2Cert, &l.CPO20SubCA2Key, "CPO-20 Sub-CA 2 (pathlen 0), issued by CPO-20 Sub-CA 1", p.CPO20SubCA2)
	}
	l.EVSEs = make([]EVSEFiles, len(p.EVSEs))
	for i, ev := range p.EVSEs {
		f := &l.EVSEs[i]
		f.SeccID = ev.SeccID
		cert("client/cso/SECC_LEAF_"+ev.SeccID+".pem", &f.V2GCert, "ISO 15118-2 SECC leaf of EVSE "+ev.SeccID, ev.V2G)
		key("client/cso/SECC_LEAF_"+ev.SeccID+".key", &f.V2GKey, "key of the ISO 15118-2 SECC leaf of EVSE "+ev.SeccID, ev.V2G)
		cert("client/cso/CPO_CERT_SECC_LEAF_CHAIN_"+ev.SeccID+".pem", &f.V2GChain, "its chain (no root)", ev.V2G, p.CPOSubCA2, p.CPOSubCA1)
		if ev.V2G20 != nil {
			cert("client/cso/SECC20_LEAF_"+ev.SeccID+".pem", &f.V2G20Cert, "ISO 15118-20 SECC leaf of EVSE "+ev.SeccID, ev.V2G20)
			key("client/cso/SECC20_LEAF_"+ev.SeccID+".key", &f.V2G20Key, "key of the ISO 15118-20 SECC leaf of EVSE "+ev.SeccID, ev.V2G20)
			cert("client/cso/CPO20_CERT_SECC20_LEAF_CHAIN_"+ev.SeccID+".pem", &f.V2G20Chain, "its chain (no root)", ev.V2G20, p.CPO20SubCA2, p.CPO20SubCA1)
		}
	}
}

// EVSEFiles are the files of one EVSE's SECC leaves in a layout (the -20 ones empty without
// Options.ISO15118_20).
type EVSEFiles struct {
	SeccID                          string
	V2GCert, V2GKey, V2GChain       string
	V2G20Cert, V2G20Key, V2G20Chain string
}

// files20 lists the -20 and per-EVSE files of l that were written.
func (l *Layout) files20() []string {
	var out []string
	add := func(ps ...string) {
		for _, p := range ps {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	add(l.SECC20LeafCert, l.SECC20LeafKey, l.SECC20Chain, l.V2G20RootCert, l.V2G20RootKey,
		l.CPO20SubCA1Cert, l.CPO20SubCA1Key, l.CPO20SubCA2Cert, l.CPO20SubCA2Key)
	for _, f := range l.EVSEs {
		add(f.V2GCert, f.V2GKey, f.V2GChain, f.V2G20Cert, f.V2G20Key, f.V2G20Chain)
	}
	return out
}
