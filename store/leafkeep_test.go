package store_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// TestLeafStaysNamedAfterItsRootIsDeleted (DESIGN §3 row 8): deleting a root leaves the station
// leaves under it on disk, not handed out (NotFoundValid), but still listed under the hash data
// get_installed_certificates gave before and deletable by it, with its key. Where the issuer
// naming the leaf was only in a bundle (a SECC leaf without a chain file whose sub-CAs are in the
// V2G bundle; a CSMS leaf directly under its root), the deletion first writes the issuers into a
// chain file of the leaf, which OpenSSL reads as a chain; a leaf with its chain file gets nothing
// new. Deleting the leaf then removes every one of its files.
func TestLeafStaysNamedAfterItsRootIsDeleted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lt      store.LeafType
		setup   func(e *env)
		kept    func(p *testpki.PKI) []*testpki.Issued // the new chain file, nil: none
		root    func(p *testpki.PKI) *testpki.Issued
		leaf    func(p *testpki.PKI) *testpki.Issued
		leafDir string
		listed  bool // get_installed_certificates lists it (V2GCertificateChain)
	}{
		{
			name: "SECC leaf with its chain file", lt: store.LeafV2G, leafDir: "client/cso", listed: true,
			root: func(p *testpki.PKI) *testpki.Issued { return p.V2GRoot },
			leaf: func(p *testpki.PKI) *testpki.Issued { return p.SECCLeaf },
		},
		{
			name: "SECC leaf whose sub-CAs are only in the V2G bundle", lt: store.LeafV2G, leafDir: "client/cso", listed: true,
			setup: func(e *env) {
				for _, c := range []*testpki.Issued{e.pki.CPOSubCA1, e.pki.CPOSubCA2} {
					if r := e.s.InstallCACertificate(string(c.CertPEM()), store.CAV2G); r != store.InstallAccepted {
						e.t.Fatal(r)
					}
				}
				removeFile(e.t, e.layout.SECCChain)
			},
			kept: func(p *testpki.PKI) []*testpki.Issued { return []*testpki.Issued{p.SECCLeaf, p.CPOSubCA2, p.CPOSubCA1} },
			root: func(p *testpki.PKI) *testpki.Issued { return p.V2GRoot },
			leaf: func(p *testpki.PKI) *testpki.Issued { return p.SECCLeaf },
		},
		{
			name: "CSMS leaf directly under its root", lt: store.LeafCSMS, leafDir: "client/csms",
			kept: func(p *testpki.PKI) []*testpki.Issued { return []*testpki.Issued{p.CSMSLeaf, p.CSMSRoot} },
			root: func(p *testpki.PKI) *testpki.Issued { return p.CSMSRoot },
			leaf: func(p *testpki.PKI) *testpki.Issued { return p.CSMSLeaf },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			p := e.pki
			if tc.setup != nil {
				tc.setup(e)
			}
			root, leaf := tc.root(p), tc.leaf(p)
			leafHash := hashOf(t, leaf.Cert, leaf.Issuer.Cert)
			if tc.listed && !listsLeaf(t, e, leafHash) {
				t.Fatal("the leaf is not listed before the deletion")
			}
			dir := e.path(tc.leafDir)
			filesBefore := dirFiles(t, dir)

			if r := e.s.DeleteCertificate(hashOf(t, root.Cert, root.Cert)); r != store.DeleteAccepted {
				t.Fatalf("deleting the root: %s", r)
			}
			added := newNames(filesBefore, dirFiles(t, dir))
			if tc.kept == nil {
				if len(added) != 0 {
					t.Fatalf("the root's deletion wrote %v into the leaf directory of a leaf that has its chain file", added)
				}
			} else {
				if len(added) != 1 || !strings.HasPrefix(added[0], "CPO_CERT_") || !strings.Contains(added[0], "_CHAIN_") || !strings.HasSuffix(added[0], ".pem") {
					t.Fatalf("the root's deletion wrote %v, want one chain file", added)
				}
				chainPath := filepath.Join(dir, added[0])
				got := fileCerts(t, chainPath)
				want := tc.kept(p)
				if len(got) != len(want) {
					t.Fatalf("%s holds %d certificates, want %d", added[0], len(got), len(want))
				}
				for i := range want {
					if !got[i].Equal(want[i].Cert) {
						t.Fatalf("%s: certificate %d is %s, want %s", added[0], i, got[i].Subject.CommonName, want[i].Cert.Subject.CommonName)
					}
				}
				// OpenSSL reads it as the leaf's chain (with the deleted root as the anchor).
				rootFile := filepath.Join(t.TempDir(), "root.pem")
				writeFile(t, rootFile, root.CertPEM(), 0o644)
				if out, err := tryOpenSSL(t, nil, "verify", "-CAfile", rootFile, "-untrusted", chainPath, chainPath); err != nil || !strings.Contains(out, ": OK") {
					t.Fatalf("openssl verify of the kept chain: %v\n%s", err, out)
				}
			}

			var info store.CertificateInfoResult
			if err := e.call("get_leaf_certificate_info", map[string]any{"certificate_type": tc.lt, "encoding": "PEM", "include_ocsp": false}, &info); err != nil || info.Status != store.InfoNotFoundValid {
				t.Fatalf("get_leaf_certificate_info after the root's deletion: %+v %v, want NotFoundValid", info, err)
			}
			if tc.listed && !listsLeaf(t, e, leafHash) {
				t.Fatal("the leaf is no longer listed under its hash data")
			}
			if r := e.s.DeleteCertificate(leafHash); r != store.DeleteAccepted {
				t.Fatalf("deleting the leaf by its hash data: %s, want Accepted", r)
			}
			for _, f := range dirFiles(t, dir) {
				t.Errorf("%s left in the leaf directory after the leaf's deletion", f)
			}
			if tc.listed && listsLeaf(t, e, leafHash) {
				t.Fatal("the deleted leaf is still listed")
			}
		})
	}
}

// listsLeaf reports whether get_installed_certificates(V2GCertificateChain) names a chain by h.
func listsLeaf(t *testing.T, e *env, h certs.HashData) bool {
	t.Helper()
	var res store.InstalledCertificates
	if err := e.call("get_installed_certificates", map[string]any{"certificate_types": []string{"V2GCertificateChain"}}, &res); err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Chains {
		if c.HashData.Equal(h) {
			return true
		}
	}
	return false
}

// dirFiles lists the regular files directly in dir (not ocsp/ or der/), sorted.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if de.Type().IsRegular() {
			out = append(out, de.Name())
		}
	}
	sort.Strings(out)
	return out
}

// newNames are the names in after that are not in before.
func newNames(before, after []string) []string {
	had := map[string]bool{}
	for _, n := range before {
		had[n] = true
	}
	var out []string
	for _, n := range after {
		if !had[n] {
			out = append(out, n)
		}
	}
	return out
}
