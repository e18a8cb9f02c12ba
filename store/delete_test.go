package store

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// eventDomains lists the CA domains of Deleted events, sorted.
func eventDomains(t *testing.T, events []Event, op UpdateOperation) []string {
	t.Helper()
	var out []string
	for _, e := range events {
		if e.Operation != op || e.CAType == "" {
			t.Errorf("unexpected event %+v", e)
			continue
		}
		out = append(out, string(e.CAType))
	}
	sort.Strings(out)
	return out
}

// T03 (verify_bundle_management): a directory bundle with two sub-CAs and no root. The sub-CA 2
// is found by its hash against sub-CA 1 (a non-self-signed parent) and deleting it removes only
// its own file; the .key files next to the certificates are untouched. Adapted: the reference
// rewrote every file of the directory on export; evsesec touches only the deleted one.
func TestReferenceDeleteFromDirectoryBundle(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(func(c *Config) { c.CSMSCABundle = "ca/csms" }))
	ts.write(t, "ca/csms/CPO_SUB_CA1.pem", p.CPOSub1.CertPEM())
	ts.write(t, "ca/csms/CPO_SUB_CA2.pem", p.CPOSub2.CertPEM())
	ts.write(t, "ca/csms/CPO_SUB_CA1.key", []byte("key 1"))
	ts.write(t, "ca/csms/CPO_SUB_CA2.key", []byte("key 2"))
	if n := ts.GetCountOfInstalledCertificates([]CertificateType{CSMSRootCertificate}); n != 2 {
		t.Fatalf("count %d, want 2 (.key files are not certificates)", n)
	}
	before := snapshotTree(t, ts.root)
	if got := ts.DeleteCertificate(hashOf(t, p.CPOSub2, p.CPOSub1)); got != DeleteAccepted {
		t.Fatalf("delete sub-CA 2 = %s", got)
	}
	after := snapshotTree(t, ts.root)
	if d := diffTrees(before, after); d != "removed ca/csms/CPO_SUB_CA2.pem" {
		t.Errorf("tree changes:\n%s\nwant only the removal of CPO_SUB_CA2.pem", d)
	}
	if n := ts.GetCountOfInstalledCertificates([]CertificateType{CSMSRootCertificate}); n != 1 {
		t.Errorf("count %d after delete, want 1", n)
	}
	if ev := eventDomains(t, ts.takeEvents(), OperationDeleted); strings.Join(ev, ",") != "CSMS" {
		t.Errorf("events for %v, want CSMS", ev)
	}
}

// T23 (delete_root_ca_01): deleting the root of the shared bundle file answers Accepted, removes
// the sub-CAs it issued and keeps the file, now empty. Leaves are left alone.
func TestReferenceDeleteRootFromSharedFile(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	all := ts.GetInstalledCertificates(append(append([]CertificateType{}, allRootTypes...), V2GCertificateChain))
	if all.Status != InstalledAccepted || len(all.Chains) == 0 || all.Chains[0].CertificateType != V2GRootCertificate {
		t.Fatalf("first chain %+v, want the V2G root", all.Chains)
	}
	leaves := snapshotTree(t, ts.path("client"))
	mo := ts.read(t, "ca/mo/MO_CA_BUNDLE.pem")
	ts.takeEvents()

	if got := ts.DeleteCertificate(all.Chains[0].HashData); got != DeleteAccepted {
		t.Fatalf("delete root = %s", got)
	}
	fi, err := os.Stat(ts.path("ca/v2g/V2G_CA_BUNDLE.pem"))
	if err != nil || fi.Size() != 0 {
		t.Fatalf("bundle file after deleting its root: %v, size %v; want an existing empty file", err, fi)
	}
	// The file is shared by V2G, CSMS and MF: each domain reports the deletion.
	if ev := eventDomains(t, ts.takeEvents(), OperationDeleted); strings.Join(ev, ",") != "CSMS,MF,V2G" {
		t.Errorf("events for %v", ev)
	}
	assertTreeUnchanged(t, ts.path("client"), leaves)
	if string(ts.read(t, "ca/mo/MO_CA_BUNDLE.pem")) != string(mo) {
		t.Error("the MO bundle changed")
	}
	hs := listedHashes(ts.chains(allRootTypes...))
	for _, h := range []certs.HashData{selfHash(t, p.V2GRoot), hashOf(t, p.CPOSub1, p.V2GRoot), hashOf(t, p.CPOSub2, p.CPOSub1)} {
		if hs[h] {
			t.Errorf("%+v still listed", h)
		}
	}
	if ts.IsCACertificateInstalled(CAV2G) {
		t.Error("V2G still has a CA")
	}
}

// Deleting from a bundle file keeps every other byte (README "Files"): comments, other roots
// and the line endings around them.
func TestDeleteKeepsOtherBytes(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t)
	head := "# V2G trust anchors, managed by the operator\n"
	content := head + string(p.V2GRoot.CertPEM()) + "subject=CN=CPOSubCA1\n" + string(p.CPOSub1.CertPEM()) +
		"\n# new root\r\n" + string(p.V2GRootNew.CertPEM()) + "# end\n"
	ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", []byte(content))
	if err := os.Chmod(ts.path("ca/v2g/V2G_ROOT_CA.pem"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := ts.DeleteCertificate(selfHash(t, p.V2GRoot)); got != DeleteAccepted {
		t.Fatalf("delete = %s", got)
	}
	want := head + "subject=CN=CPOSubCA1\n" + "\n# new root\r\n" + string(p.V2GRootNew.CertPEM()) + "# end\n"
	if got := string(ts.read(t, "ca/v2g/V2G_ROOT_CA.pem")); got != want {
		t.Errorf("bundle after delete:\n%s\nwant:\n%s", got, want)
	}
	if fi, _ := os.Stat(ts.path("ca/v2g/V2G_ROOT_CA.pem")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's 0640 kept", fi.Mode().Perm())
	}
}

// T24 (delete_root_ca_02): an unknown hash is NotFound and changes nothing; so is hash data that
// is not even well-formed (the reference's "UnknownKeyHash").
func TestReferenceDeleteUnknownHash(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	before := snapshotTree(t, ts.root)
	known := selfHash(t, p.V2GRoot)
	for name, h := range map[string]certs.HashData{
		"reference made-up hash": {Algorithm: certs.SHA256, IssuerNameHash: known.IssuerNameHash, IssuerKeyHash: "UnknownKeyHash", SerialNumber: "3046"},
		"well-formed, unknown":   {Algorithm: certs.SHA256, IssuerNameHash: known.IssuerNameHash, IssuerKeyHash: known.IssuerKeyHash, SerialNumber: "3046"},
		"wrong algorithm":        {Algorithm: certs.SHA384, IssuerNameHash: known.IssuerNameHash, IssuerKeyHash: known.IssuerKeyHash, SerialNumber: known.SerialNumber},
		"unknown algorithm":      {Algorithm: "MD5", IssuerNameHash: known.IssuerNameHash, IssuerKeyHash: known.IssuerKeyHash, SerialNumber: known.SerialNumber},
		"empty":                  {},
		"grandparent as issuer":  hashOf(t, p.CPOSub2, p.V2GRoot),
	} {
		if got := ts.DeleteCertificate(h); got != DeleteNotFound {
			t.Errorf("%s: delete = %s, want NotFound", name, got)
		}
	}
	assertTreeUnchanged(t, ts.root, before)
	if ev := ts.takeEvents(); len(ev) != 0 {
		t.Errorf("events %+v", ev)
	}
}

// T25/T26 (delete_sub_ca_1/2) on the shared bundle: deleting sub-CA 1 takes sub-CA 2 with it and
// keeps the root; deleting sub-CA 2 alone keeps sub-CA 1. Hex in upper case, a zero-padded serial
// and the SHA-384/512 forms name the same certificate (DESIGN.md §2.5).
func TestReferenceDeleteSubCAs(t *testing.T) {
	p := newRefPKI(t)
	upper := func(h certs.HashData) certs.HashData {
		h.IssuerNameHash, h.IssuerKeyHash, h.SerialNumber = strings.ToUpper(h.IssuerNameHash), strings.ToUpper(h.IssuerKeyHash), "00"+strings.ToUpper(h.SerialNumber)
		return h
	}
	for _, tc := range []struct {
		name     string
		target   func(t *testing.T) certs.HashData
		gone     []*testpki.Issued
		stays    []*testpki.Issued
		wantKept int
	}{
		{"T25 sub-CA 1 cascades", func(t *testing.T) certs.HashData { return hashOf(t, p.InstSub1, p.InstRoot3) },
			[]*testpki.Issued{p.InstSub1, p.InstSub2}, []*testpki.Issued{p.InstRoot3}, 4},
		{"T26 sub-CA 2 alone", func(t *testing.T) certs.HashData { return hashOf(t, p.InstSub2, p.InstSub1) },
			[]*testpki.Issued{p.InstSub2}, []*testpki.Issued{p.InstRoot3, p.InstSub1}, 5},
		{"upper-case hex, padded serial", func(t *testing.T) certs.HashData { return upper(hashOf(t, p.InstSub2, p.InstSub1)) },
			[]*testpki.Issued{p.InstSub2}, []*testpki.Issued{p.InstRoot3, p.InstSub1}, 5},
		{"SHA-384", func(t *testing.T) certs.HashData { return hashOfAlg(t, p.InstSub1, p.InstRoot3, certs.SHA384) },
			[]*testpki.Issued{p.InstSub1, p.InstSub2}, []*testpki.Issued{p.InstRoot3}, 4},
		{"SHA-512, upper case", func(t *testing.T) certs.HashData { return upper(hashOfAlg(t, p.InstRoot3, nil, certs.SHA512)) },
			[]*testpki.Issued{p.InstRoot3, p.InstSub1, p.InstSub2}, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newCAStore(t, withConfig(sharedBundleConfig))
			p.writeRefTree(t, ts)
			for _, c := range []*testpki.Issued{p.InstRoot3, p.InstSub1, p.InstSub2} {
				old := ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem")
				ts.installOK(t, CACSMS, c)
				now := string(ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem"))
				if now == string(old) || !strings.Contains(now, string(c.CertPEM())) {
					t.Fatalf("install of %s did not add its exact PEM", c.Cert.Subject.CommonName)
				}
			}
			ts.takeEvents()
			if got := ts.DeleteCertificate(tc.target(t)); got != DeleteAccepted {
				t.Fatalf("delete = %s", got)
			}
			// The reference reported V2G, the first type visiting the shared file; evsesec reports
			// every domain the file serves.
			if ev := eventDomains(t, ts.takeEvents(), OperationDeleted); strings.Join(ev, ",") != "CSMS,MF,V2G" {
				t.Errorf("events for %v", ev)
			}
			data := string(ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem"))
			hs := listedHashes(ts.chains(allRootTypes...))
			for _, c := range tc.gone {
				if strings.Contains(data, string(c.CertPEM())) {
					t.Errorf("%s still in the bundle", c.Cert.Subject.CommonName)
				}
			}
			for _, c := range tc.stays {
				if !strings.Contains(data, string(c.CertPEM())) {
					t.Errorf("%s was removed", c.Cert.Subject.CommonName)
				}
			}
			for _, h := range []struct {
				c, is *testpki.Issued
				gone  bool
			}{{p.InstSub1, p.InstRoot3, contains(tc.gone, p.InstSub1)}, {p.InstSub2, p.InstSub1, contains(tc.gone, p.InstSub2)}} {
				if hs[hashOf(t, h.c, h.is)] == h.gone {
					t.Errorf("%s listed = %v", h.c.Cert.Subject.CommonName, !h.gone)
				}
			}
			if n := len(certsInFile(t, ts.path("ca/v2g/V2G_CA_BUNDLE.pem"))); n != tc.wantKept {
				t.Errorf("bundle holds %d certificates, want %d", n, tc.wantKept)
			}
		})
	}
}

func contains(list []*testpki.Issued, c *testpki.Issued) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// A CA held by several domains in different files is removed from each of them.
func TestDeleteFromEveryDomain(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(func(c *Config) { c.MOCABundle = "ca/mo" }))
	ts.installOK(t, CAV2G, p.V2GRoot, p.CPOSub1)
	ts.installOK(t, CAMO, p.V2GRoot, p.CPOSub1, p.MORoot)
	ts.takeEvents()
	if got := ts.DeleteCertificate(selfHash(t, p.V2GRoot)); got != DeleteAccepted {
		t.Fatalf("delete = %s", got)
	}
	if ev := eventDomains(t, ts.takeEvents(), OperationDeleted); strings.Join(ev, ",") != "MO,V2G" {
		t.Errorf("events for %v", ev)
	}
	if fi, err := os.Stat(ts.path("ca/v2g/V2G_ROOT_CA.pem")); err != nil || fi.Size() != 0 {
		t.Errorf("V2G bundle file: %v", err)
	}
	entries, _ := os.ReadDir(ts.path("ca/mo"))
	if len(entries) != 1 || entries[0].Name() != bundleFileName(CAMO, p.MORoot.Cert, true) {
		t.Errorf("MO directory after delete: %v; want only the MO root's file", entries)
	}
}

// A failed write answers Failed (delete) or WriteError (install) and leaves the tree as it was,
// without temporary files.
func TestCAWriteFailures(t *testing.T) {
	p := newRefPKI(t)
	for _, dir := range []bool{false, true} {
		name := "file bundle"
		if dir {
			name = "directory bundle"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			cfg := func(c *Config) {
				if dir {
					c.V2GCABundle = "ca/v2g"
				}
			}
			setup := openCAStore(t, root, withConfig(cfg))
			setup.installOK(t, CAV2G, p.V2GRoot, p.CPOSub1)
			bundle := setup.Config().CABundlePath(CAV2G)
			ffs := &faultFS{failRename: under(bundle), err: syscall.ENOSPC}
			if dir {
				// Removing a file of the directory fails too.
				ffs.failCreate = under(bundle)
			}
			ts := openCAStore(t, root, withConfig(cfg), withFS(ffs))
			before := snapshotTree(t, root)
			if got := ts.InstallCACertificate(string(p.V2GRootNew.CertPEM()), CAV2G); got != InstallWriteError {
				t.Errorf("install = %s, want WriteError", got)
			}
			assertTreeUnchanged(t, root, before)
			if !dir {
				if got := ts.DeleteCertificate(hashOf(t, p.CPOSub1, p.V2GRoot)); got != DeleteFailed {
					t.Errorf("delete = %s, want Failed", got)
				}
				assertTreeUnchanged(t, root, before)
			}
			if ev := ts.takeEvents(); len(ev) != 0 {
				t.Errorf("events after failures: %+v", ev)
			}
		})
	}
}

// A certificate file of a directory bundle that holds several certificates has only the deleted
// one cut out; a file left with no certificate is removed.
func TestDeleteFromMultiCertificateFileInDirectory(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
	ts.write(t, "ca/v2g/V2G_CA_BUNDLE.pem", testpki.CertsPEM(p.CPOSub2, p.CPOSub1, p.V2GRoot))
	ts.write(t, "ca/v2g/V2G_ROOT_CA_NEW.pem", p.V2GRootNew.CertPEM())
	if got := ts.DeleteCertificate(hashOf(t, p.CPOSub2, p.CPOSub1)); got != DeleteAccepted {
		t.Fatalf("delete = %s", got)
	}
	if got := string(ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem")); got != string(testpki.CertsPEM(p.CPOSub1, p.V2GRoot)) {
		t.Error("the bundle file is not the two remaining blocks")
	}
	if got := ts.DeleteCertificate(selfHash(t, p.V2GRoot)); got != DeleteAccepted {
		t.Fatalf("delete root = %s", got)
	}
	if _, err := os.Stat(ts.path("ca/v2g/V2G_CA_BUNDLE.pem")); !os.IsNotExist(err) {
		t.Errorf("emptied file of a directory bundle still exists: %v", err)
	}
	if got := string(ts.read(t, "ca/v2g/V2G_ROOT_CA_NEW.pem")); got != string(p.V2GRootNew.CertPEM()) {
		t.Error("the other root's file changed")
	}
	if entries, _ := os.ReadDir(filepath.Join(ts.root, "ca/v2g")); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
}
