package store

import (
	"crypto/x509"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// namer names hash data by the certificate it belongs to, so that an order failure reads as a
// list of names.
type namer map[certs.HashData]string

func (n namer) add(t testing.TB, name string, c, issuer *x509.Certificate) {
	t.Helper()
	if issuer == nil {
		issuer = c
	}
	h, err := certs.ComputeHashData(c, issuer, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	n[h] = name
}

func (n namer) of(h certs.HashData) string {
	if s, ok := n[h]; ok {
		return s
	}
	return "?" + h.SerialNumber
}

func (n namer) listing(chains []HashDataChain) []string {
	var out []string
	for _, c := range chains {
		s := n.of(c.HashData) + ":"
		for i, ch := range c.Children {
			if i > 0 {
				s += ","
			}
			s += n.of(ch)
		}
		out = append(out, s)
	}
	return out
}

func (n namer) requests(l []OCSPRequestData) []string {
	var out []string
	for _, d := range l {
		out = append(out, n.of(d.HashData))
	}
	return out
}

// TestInstalledCertificatesInReferenceOrder: get_installed_certificates lists the roots of a
// domain last certificate first (bundle files by path, each in file order), each with its
// descendants depth first, in the order the reference's hierarchy attaches them. Bundle files
// made with openssl.
func TestInstalledCertificatesInReferenceOrder(t *testing.T) {
	p := newOSSLPKI(t)
	ca := osslOpts{CA: true}
	rootA := p.root("rootA", "/CN=Order Root A", ca)
	subA1 := p.issue(rootA, "subA1", "/CN=Order Sub-CA A1", ca)
	subA2 := p.issue(subA1, "subA2", "/CN=Order Sub-CA A2", ca)
	subA1b := p.issue(rootA, "subA1b", "/CN=Order Sub-CA A1b", ca)
	rootB := p.root("rootB", "/CN=Order Root B", ca)
	subB1 := p.issue(rootB, "subB1", "/CN=Order Sub-CA B1", ca)
	n := namer{}
	for _, c := range []struct {
		name   string
		c, iss *osslCert
	}{{"rootA", rootA, nil}, {"subA1", subA1, rootA}, {"subA2", subA2, subA1}, {"subA1b", subA1b, rootA}, {"rootB", rootB, nil}, {"subB1", subB1, rootB}} {
		var iss *x509.Certificate
		if c.iss != nil {
			iss = c.iss.Cert
		}
		n.add(t, c.name, c.c.Cert, iss)
	}

	tests := []struct {
		name  string
		files map[string][]*osslCert // under ca/v2g/
		dir   bool
		want  []string
	}{
		{"one file, roots and sub-CAs mixed", map[string][]*osslCert{"V2G_ROOT_CA.pem": {rootA, subA1, rootB, subB1, subA2, subA1b}}, false,
			[]string{"rootB:subB1", "rootA:subA1b,subA1,subA2"}},
		{"one file, file order reversed", map[string][]*osslCert{"V2G_ROOT_CA.pem": {subA1b, subA2, subB1, rootB, subA1, rootA}}, false,
			[]string{"rootA:subA1,subA2,subA1b", "rootB:subB1"}},
		{"one file, sub-CAs before their roots", map[string][]*osslCert{"V2G_ROOT_CA.pem": {subA2, subA1, subB1, rootA, rootB}}, false,
			[]string{"rootB:subB1", "rootA:subA1,subA2"}},
		// Listed once (README), at the first place the reference lists it.
		{"one file, a root twice", map[string][]*osslCert{"V2G_ROOT_CA.pem": {rootA, rootB, subB1, rootA}}, false,
			[]string{"rootA", "rootB:subB1"}},
		{"directory, files by path", map[string][]*osslCert{"a.pem": {rootA, subA1}, "b.pem": {rootB}, "c.pem": {subA2}}, true,
			[]string{"rootB", "rootA:subA1,subA2"}},
		{"directory, other file names", map[string][]*osslCert{"a.pem": {rootB}, "b.pem": {rootA, subB1}, "c.pem": {subA1}}, true,
			[]string{"rootA:subA1", "rootB:subB1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []caStoreOption
			if tc.dir {
				opts = append(opts, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
			}
			ts := newCAStore(t, opts...)
			if tc.dir {
				if err := os.Remove(ts.path("ca/v2g/V2G_ROOT_CA.pem")); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
			for name, cs := range tc.files {
				ts.write(t, "ca/v2g/"+name, []byte(pemOf(cs...)))
			}
			got := n.listing(ts.GetInstalledCertificates([]CertificateType{V2GRootCertificate}).Chains)
			for i := range got {
				got[i] = strings.TrimSuffix(got[i], ":")
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("listing %q, want %q", got, tc.want)
			}
			// The kept answer is the same.
			again := n.listing(ts.GetInstalledCertificates([]CertificateType{V2GRootCertificate}).Chains)
			for i := range again {
				again[i] = strings.TrimSuffix(again[i], ":")
			}
			if !slices.Equal(again, tc.want) {
				t.Fatalf("kept listing %q, want %q", again, tc.want)
			}
		})
	}
}

// TestOCSPRequestDataInReferenceOrder: get_v2g_ocsp_request_data and get_mo_ocsp_request_data
// list a chain's certificates in the order in which the reference walks the hierarchy of the
// bundle followed by the chain (as its file holds it, or as sent): reversed depth-first order,
// where a sub-CA that is both in the bundle and in the chain counts at its last copy.
func TestOCSPRequestDataInReferenceOrder(t *testing.T) {
	ocsp := func(s testpki.Spec) testpki.Spec {
		s.OCSPURLs = []string{"http://ocsp.example/" + s.CommonName}
		return s
	}
	root := mustRoot(t, caSpec("Order V2G Root"))
	sub1 := mustIssue(t, root, ocsp(caSpec("Order CPO Sub-CA 1")))
	sub2 := mustIssue(t, sub1, ocsp(caSpec("Order CPO Sub-CA 2")))
	secc := mustIssue(t, sub2, ocsp(leafSpec("Order SECC")))
	moRoot := mustRoot(t, caSpec("Order MO Root"))
	mo1 := mustIssue(t, moRoot, ocsp(caSpec("Order MO Sub-CA 1")))
	mo2 := mustIssue(t, mo1, ocsp(caSpec("Order MO Sub-CA 2")))
	contract := mustIssue(t, mo2, ocsp(leafSpec("Order Contract")))
	n := namer{}
	for name, c := range map[string]*testpki.Issued{"sub1": sub1, "sub2": sub2, "secc": secc, "mo1": mo1, "mo2": mo2, "contract": contract} {
		n.add(t, name, c.Cert, c.Issuer.Cert)
	}
	pemOfI := func(cs ...*testpki.Issued) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, c.CertPEM()...)
		}
		return b
	}

	t.Run("v2g", func(t *testing.T) {
		tests := []struct {
			name   string
			bundle []*testpki.Issued
			chain  []*testpki.Issued // the leaf's chain file; nil: the leaf alone
			want   []string
		}{
			{"sub-CAs only in the chain file", []*testpki.Issued{root}, []*testpki.Issued{secc, sub2, sub1}, []string{"secc", "sub2", "sub1"}},
			{"first sub-CA in the bundle too", []*testpki.Issued{root, sub1}, []*testpki.Issued{secc, sub2, sub1}, []string{"sub1", "secc", "sub2"}},
			{"both sub-CAs in the bundle too", []*testpki.Issued{root, sub1, sub2}, []*testpki.Issued{secc, sub2, sub1}, []string{"sub1", "sub2", "secc"}},
			{"leaf alone, sub-CAs in the bundle", []*testpki.Issued{root, sub1, sub2}, nil, []string{"secc", "sub2", "sub1"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ts := newCAStore(t)
				ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", pemOfI(tc.bundle...))
				key, err := secc.KeyPEM("")
				if err != nil {
					t.Fatal(err)
				}
				kp := ts.write(t, "client/cso/SECC_LEAF_1.key", key)
				if err := os.Chmod(kp, 0o600); err != nil {
					t.Fatal(err)
				}
				ts.write(t, "client/cso/SECC_LEAF_1.pem", secc.CertPEM())
				if tc.chain != nil {
					ts.write(t, "client/cso/CPO_CERT_SECC_LEAF_CHAIN_1.pem", pemOfI(tc.chain...))
				}
				for _, step := range []string{"computed", "kept"} {
					if got := n.requests(ts.GetV2GOCSPRequestData().List); !slices.Equal(got, tc.want) {
						t.Fatalf("%s: %q, want %q", step, got, tc.want)
					}
				}
			})
		}
	})

	t.Run("mo", func(t *testing.T) {
		tests := []struct {
			name   string
			bundle []*testpki.Issued
			chain  []*testpki.Issued // as sent
			want   []string
		}{
			{"leaf first, sub-CAs only sent", []*testpki.Issued{moRoot}, []*testpki.Issued{contract, mo2, mo1}, []string{"contract", "mo2", "mo1"}},
			{"leaf first, first sub-CA in the bundle", []*testpki.Issued{moRoot, mo1}, []*testpki.Issued{contract, mo2, mo1}, []string{"mo1", "contract", "mo2"}},
			{"root side first, first sub-CA in the bundle", []*testpki.Issued{moRoot, mo1}, []*testpki.Issued{mo1, mo2, contract}, []string{"mo1", "contract", "mo2"}},
			{"sub-CAs in the bundle, leaf and one sent", []*testpki.Issued{moRoot, mo1}, []*testpki.Issued{mo2, contract}, []string{"contract", "mo2", "mo1"}},
			{"everything in the bundle, leaf alone", []*testpki.Issued{moRoot, mo1, mo2}, []*testpki.Issued{contract}, []string{"contract", "mo2", "mo1"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ts := newCAStore(t)
				ts.write(t, "ca/mo/MO_ROOT_CA.pem", pemOfI(tc.bundle...))
				got := n.requests(ts.GetMOOCSPRequestData(string(pemOfI(tc.chain...))).List)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("%q, want %q", got, tc.want)
				}
			})
		}
	})
}
