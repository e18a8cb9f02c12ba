package store_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// TestOCSPUpdateRaisesEvents: an OCSP cache update is a store change. A TLS config that cached
// the leaf's staple must hear of it (tlsconf.Events counts events per leaf type and domain), and
// EvseV2G, which reads the OCSP files named in get_all_valid_certificates_info when it builds its
// TLS server and rebuilds only on certificate_store_update with leaf_certificate_type V2G, must
// be told: an update concerning a V2G leaf's files (the leaf or a sub-CA of its chain file) is
// an event with operation Installed and leaf type V2G, which the transports publish. Other
// updates (a CSMS leaf, a CA of a bundle) and the garbage collection of a stale response are
// events without operation: they reach tlsconf, not the wire. A refused response raises nothing.
func TestOCSPUpdateRaisesEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := e.pki
	now := e.clock.Now()
	e.events.take()
	update := func(c, issuer *testpki.Issued, nextUpdate time.Time) error {
		der := ocspGoResponse(t, issuer.Cert, issuer, true, c.Cert.SerialNumber, ocsp.Good, now.Add(-time.Minute), nextUpdate)
		return e.s.UpdateOCSPCache(hashOf(t, c.Cert, issuer.Cert), base64.StdEncoding.EncodeToString(der))
	}
	cso, csms, mo := e.path("client/cso/ocsp"), e.path("client/csms/ocsp"), e.path("ca/mo/ocsp")
	for _, tc := range []struct {
		name      string
		cert      *testpki.Issued
		dir       string
		op        store.UpdateOperation
		leaf      store.LeafType
		domain    store.CAType
		nextAfter time.Duration
	}{
		{"SECC leaf", p.SECCLeaf, cso, store.OperationInstalled, store.LeafV2G, "", time.Hour},
		{"sub-CA of the SECC chain file", p.CPOSubCA1, cso, store.OperationInstalled, store.LeafV2G, "", 24 * time.Hour},
		{"CSMS leaf", p.CSMSLeaf, csms, "", store.LeafCSMS, "", 24 * time.Hour},
		{"MO root", p.MORoot, mo, "", "", store.CAMO, 24 * time.Hour},
	} {
		issuer := tc.cert.Issuer
		if issuer == nil {
			issuer = tc.cert
		}
		if err := update(tc.cert, issuer, now.Add(tc.nextAfter)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := e.events.take()
		if len(got) != 1 {
			t.Fatalf("%s: events %+v, want one", tc.name, got)
		}
		ev := got[0]
		if ev.Kind != store.EventOCSP || ev.Operation != tc.op || ev.LeafType != tc.leaf || ev.CAType != tc.domain || filepath.Dir(ev.Path) != tc.dir {
			t.Errorf("%s: event %+v, want kind ocsp, operation %q, leaf type %q, domain %q, a file in %s", tc.name, ev, tc.op, tc.leaf, tc.domain, tc.dir)
		}
		if _, err := os.Stat(ev.Path); err != nil {
			t.Errorf("%s: the event names %s: %v", tc.name, ev.Path, err)
		}
	}

	// Refused: not a response, and a response about another certificate.
	if err := e.s.UpdateOCSPCache(hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert), base64.StdEncoding.EncodeToString([]byte("no ocsp"))); err == nil {
		t.Fatal("garbage accepted")
	}
	wrong := ocspGoResponse(t, p.CPOSubCA2.Cert, p.CPOSubCA2, false, big.NewInt(4242), ocsp.Good, now.Add(-time.Minute), now.Add(time.Hour))
	if err := e.s.UpdateOCSPCache(hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert), base64.StdEncoding.EncodeToString(wrong)); err == nil {
		t.Fatal("a response about another serial was accepted")
	}
	if got := e.events.take(); len(got) != 0 {
		t.Fatalf("refused updates raised %+v", got)
	}

	// Two hours on, the SECC leaf's response is stale: garbage collection removes it and says so
	// to the process (not on the wire: no operation).
	e.clock.Advance(2 * time.Hour)
	rep := e.s.GarbageCollect()
	if len(rep.RemovedOCSP) != 1 {
		t.Fatalf("removed %v, want the SECC leaf's response", rep.RemovedOCSP)
	}
	var ocspEvents []store.Event
	for _, ev := range e.events.take() {
		if ev.Kind == store.EventOCSP {
			ocspEvents = append(ocspEvents, ev)
		}
	}
	if len(ocspEvents) != 1 || ocspEvents[0].LeafType != store.LeafV2G || ocspEvents[0].Operation != "" || ocspEvents[0].Path != rep.RemovedOCSP[0] {
		t.Fatalf("garbage collection events %+v, want one V2G OCSP event without operation for %s", ocspEvents, rep.RemovedOCSP[0])
	}
}

// TestLeafInfoOCSPListPairsWithCertificateFile: EvseV2G pairs the ocsp list of a chain with the
// certificates of its `certificate` file by index and staples only when the counts agree. So in
// get_leaf_certificate_info and get_all_valid_certificates_info (PEM and DER) the list has one
// entry per certificate of that file, in the file's order, each with that certificate's hash
// data: for the standard chain file (leaf and sub-CAs), for an existing chain file that holds the
// root as well, and for one that also holds a certificate whose issuer the store lacks (a
// cross-certificate of the root by a root not installed): that entry keeps its position with an
// empty hash and no path, as the reference does, instead of shifting the list.
func TestLeafInfoOCSPListPairsWithCertificateFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra func(e *env) []*x509.Certificate // the chain file's certificates after the sub-CAs
	}{
		{"leaf and sub-CAs", nil},
		{"chain file with the root", func(e *env) []*x509.Certificate { return []*x509.Certificate{e.pki.V2GRoot.Cert} }},
		{"chain file with the root and a cross-certificate", func(e *env) []*x509.Certificate {
			return []*x509.Certificate{e.pki.V2GRoot.Cert, crossCertificate(t, e.pki.V2GRoot)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			p := e.pki
			want := []*x509.Certificate{p.SECCLeaf.Cert, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert}
			if tc.extra != nil {
				want = append(want, tc.extra(e)...)
				// An existing EVerest tree's chain file, written by hand in place of ours.
				writeFile(t, e.layout.SECCChain, []byte(pemOf(want...)), 0o644)
			}
			// A response for the leaf, so that one entry has a path.
			der := ocspGoResponse(t, p.CPOSubCA2.Cert, p.CPOSubCA2, false, p.SECCLeaf.Cert.SerialNumber, ocsp.Good, e.clock.Now().Add(-time.Minute), e.clock.Now().Add(time.Hour))
			if err := e.s.UpdateOCSPCache(hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert), base64.StdEncoding.EncodeToString(der)); err != nil {
				t.Fatal(err)
			}
			for _, enc := range []string{"PEM", "DER"} {
				var one store.CertificateInfoResult
				if err := e.call("get_leaf_certificate_info", map[string]any{"certificate_type": "V2G", "encoding": enc, "include_ocsp": true}, &one); err != nil || one.Info == nil {
					t.Fatalf("get_leaf_certificate_info %s: %+v %v", enc, one, err)
				}
				var all store.CertificateFullInfoResult
				if err := e.call("get_all_valid_certificates_info", map[string]any{"certificate_type": "V2G", "encoding": enc, "include_ocsp": true}, &all); err != nil || len(all.Info) != 1 {
					t.Fatalf("get_all_valid_certificates_info %s: %+v %v", enc, all, err)
				}
				for what, in := range map[string]store.CertificateInfo{"leaf info " + enc: *one.Info, "all-valid info " + enc: all.Info[0]} {
					file := fileCerts(t, in.Certificate)
					if len(file) != len(want) || in.CertificateCount != len(want) || len(in.OCSP) != len(file) {
						t.Fatalf("%s: %s holds %d certificates, certificate_count %d, %d ocsp entries; want %d each", what, in.Certificate, len(file), in.CertificateCount, len(in.OCSP), len(want))
					}
					for i, c := range file {
						if !c.Equal(want[i]) {
							t.Fatalf("%s: certificate %d of the file is %s, want %s", what, i, c.Subject.CommonName, want[i].Subject.CommonName)
						}
						// The issuer: c itself, or whichever certificate of the file or of the
						// V2G bundle (the root) signed it.
						var issuer *x509.Certificate
						if certs.IsSelfSigned(c) {
							issuer = c
						}
						for _, cand := range append([]*x509.Certificate{p.V2GRoot.Cert}, file...) {
							if issuer == nil && !cand.Equal(c) && c.CheckSignatureFrom(cand) == nil {
								issuer = cand
							}
						}
						if issuer == nil {
							if (in.OCSP[i].Hash != certs.HashData{Algorithm: certs.SHA256}) || in.OCSP[i].OCSPPath != "" {
								t.Errorf("%s: entry %d (%s, issuer not in the store) is %+v, want an empty hash and no path", what, i, c.Subject.CommonName, in.OCSP[i])
							}
							continue
						}
						if h := hashOf(t, c, issuer); !in.OCSP[i].Hash.Equal(h) {
							t.Errorf("%s: entry %d is %+v, want the hash data of %s", what, i, in.OCSP[i].Hash, c.Subject.CommonName)
						}
						if (in.OCSP[i].OCSPPath != "") != (i == 0) {
							t.Errorf("%s: entry %d path %q (only the leaf has a response)", what, i, in.OCSP[i].OCSPPath)
						}
					}
				}
			}
		})
	}
}

// crossCertificate is root's name and key certified by a new root that no domain holds.
func crossCertificate(t *testing.T, root *testpki.Issued) *x509.Certificate {
	t.Helper()
	other := ocspRoot(t, "Other V2G Root")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		RawSubject:            root.Cert.RawSubject,
		NotBefore:             root.Cert.NotBefore,
		NotAfter:              root.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          root.Cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, other.Cert, root.Cert.PublicKey, other.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
