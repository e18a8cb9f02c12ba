package store

import (
	"bytes"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// T01 (verify_basics): the bundle file parses into its three PEM blocks in file order, and the
// hash data of block i against block i+1 is what the store reports for that certificate.
func TestReferenceBundleParsingAndHashData(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)

	data := ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem")
	blocks, err := certs.ParsePEMBlocks(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []*testpki.Issued{p.CPOSub2, p.CPOSub1, p.V2GRoot}
	if len(blocks) != len(want) {
		t.Fatalf("%d PEM blocks, want 3", len(blocks))
	}
	for i, b := range blocks {
		if !bytes.Equal(b.Cert.Raw, want[i].Cert.Raw) {
			t.Fatalf("block %d is %q, want %q", i, b.Cert.Subject.CommonName, want[i].Cert.Subject.CommonName)
		}
		if got := string(data[b.Start:b.End]); got != string(want[i].CertPEM()) {
			t.Errorf("block %d text differs from the certificate's PEM", i)
		}
	}
	pool := certs.NewPool(blocks[0].Cert, blocks[1].Cert, blocks[2].Cert)
	for i := 0; i < 2; i++ {
		h, err := certs.ComputeHashData(blocks[i].Cert, blocks[i+1].Cert, certs.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if ph, ok := pool.HashData(blocks[i].Cert, certs.SHA256); !ok || ph != h {
			t.Errorf("block %d: pool hash data %+v (ok %v), want %+v", i, ph, ok, h)
		}
	}
	rootHash, _ := certs.ComputeHashData(blocks[2].Cert, blocks[2].Cert, certs.SHA256)

	chains := ts.chains(V2GRootCertificate)
	if len(chains) != 1 {
		t.Fatalf("%d V2G root chains, want 1: %+v", len(chains), chains)
	}
	c := chains[0]
	if c.CertificateType != V2GRootCertificate || c.HashData != rootHash {
		t.Errorf("chain top %+v, want the root's self hash %+v", c, rootHash)
	}
	wantChildren := []certs.HashData{hashOf(t, p.CPOSub1, p.V2GRoot), hashOf(t, p.CPOSub2, p.CPOSub1)}
	if len(c.Children) != 2 || c.Children[0] != wantChildren[0] || c.Children[1] != wantChildren[1] {
		t.Errorf("children %+v, want [sub1 vs root, sub2 vs sub1] %+v", c.Children, wantChildren)
	}
}

// T04 (verify_certificate_counts), plus the rule the reference left untested: in one query, a
// bundle file shared by several types is counted once.
func TestReferenceCertificateCounts(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	for _, tc := range []struct {
		types []CertificateType
		want  int
	}{
		{[]CertificateType{V2GCertificateChain}, 4}, // SECC_LEAF.pem (1) + CPO_CERT_CHAIN.pem (3)
		{[]CertificateType{V2GRootCertificate}, 3},
		{[]CertificateType{MFRootCertificate}, 3},
		{[]CertificateType{MORootCertificate}, 3},
		{[]CertificateType{CSMSRootCertificate}, 3},
		{[]CertificateType{V2GRootCertificate, MFRootCertificate, CSMSRootCertificate}, 3},
		{allRootTypes, 6},
		{append(append([]CertificateType{}, allRootTypes...), V2GCertificateChain), 10},
		{nil, 0},
	} {
		if got := ts.GetCountOfInstalledCertificates(tc.types); got != tc.want {
			t.Errorf("count %v = %d, want %d", tc.types, got, tc.want)
		}
	}
}

// T15/T16 (retrieve_root_ca, retrieve_root_location): for a bundle file both queries return the
// configured path. Adapted: evsesec returns the path resolved under the certs root (the module
// prefixes relative paths the same way before the library sees them), an absolute configured
// path unchanged, and "" for a bundle that does not exist (the reference created an empty file
// on load and returned it, DESIGN.md §3 rows 11–13).
func TestReferenceVerifyFileOfFileBundle(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	before := snapshotTree(t, ts.root)
	want := ts.path("ca/v2g/V2G_CA_BUNDLE.pem")
	for _, d := range []CAType{CAV2G, CACSMS, CAMF} {
		if got := ts.GetVerifyFile(d); got != want {
			t.Errorf("get_verify_file(%s) = %q, want %q", d, got, want)
		}
		if got := ts.GetVerifyLocation(d); got != want {
			t.Errorf("get_verify_location(%s) = %q, want %q", d, got, want)
		}
	}
	assertTreeUnchanged(t, ts.root, before)
	// Nor the store's lock file (which snapshots leave out): with file bundles these answers
	// need no lock, so a read-only caller leaves the certs root exactly as it found it.
	if _, err := os.Lstat(filepath.Join(ts.root, LockFileName)); !os.IsNotExist(err) {
		t.Errorf("get_verify_file/get_verify_location of file bundles created %s (%v)", LockFileName, err)
	}

	abs := filepath.Join(t.TempDir(), "elsewhere", "ROOTS.pem")
	ts2 := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = abs }))
	if got := ts2.GetVerifyFile(CAV2G); got != "" {
		t.Errorf("get_verify_file of a missing bundle = %q, want \"\"", got)
	}
	if got := ts2.GetVerifyLocation(CAV2G); got != "" {
		t.Errorf("get_verify_location of a missing bundle = %q, want \"\"", got)
	}
	if _, err := os.Stat(abs); !os.IsNotExist(err) {
		t.Errorf("asking for a missing bundle created it: %v", err)
	}
	ts2.installOK(t, CAV2G, p.V2GRoot)
	if got := ts2.GetVerifyFile(CAV2G); got != abs {
		t.Errorf("get_verify_file with an absolute bundle path = %q, want %q", got, abs)
	}
	if got := ts2.GetVerifyLocation(CAV2G); got != abs {
		t.Errorf("get_verify_location with an absolute bundle path = %q, want %q", got, abs)
	}
	// An existing but empty bundle file is still the verify file, as in the reference.
	ts3 := newCAStore(t)
	ts3.write(t, "ca/mf/MF_ROOT_CA.pem", nil)
	if got := ts3.GetVerifyFile(CAMF); got != ts3.path("ca/mf/MF_ROOT_CA.pem") {
		t.Errorf("get_verify_file of an empty bundle file = %q", got)
	}
}

// T17 (install_root_ca_01): a new root with the DN of the installed root is Accepted, the bundle
// holds it afterwards (decided on the whole certificate), the old bytes are kept as they were and
// the verify file is still the bundle.
func TestReferenceInstallSameDNRoot(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	old := ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem")
	ts.takeEvents()
	if got := ts.InstallCACertificate(string(p.V2GRootNew.CertPEM()), CAV2G); got != InstallAccepted {
		t.Fatalf("install: %s", got)
	}
	now := ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem")
	if !bytes.HasPrefix(now, old) || string(now[len(old):]) != string(p.V2GRootNew.CertPEM()) {
		t.Errorf("bundle is not the old bytes followed by the new root's PEM")
	}
	cs := certsInFile(t, ts.path("ca/v2g/V2G_CA_BUNDLE.pem"))
	if !containsCert(cs, p.V2GRootNew.Cert) || !containsCert(cs, p.V2GRoot.Cert) || len(cs) != 4 {
		t.Errorf("bundle holds %d certificates; want the 3 old ones and the new root", len(cs))
	}
	if got := ts.GetVerifyFile(CAV2G); got != ts.path("ca/v2g/V2G_CA_BUNDLE.pem") {
		t.Errorf("get_verify_file = %q", got)
	}
	ev := ts.takeEvents()
	if len(ev) != 1 || ev[0].Kind != EventInstall || ev[0].Operation != OperationInstalled || ev[0].CAType != CAV2G {
		t.Errorf("events %+v, want one Installed for V2G", ev)
	}
	// Both roots are listed, each with its own self hash.
	hs := listedHashes(ts.chains(V2GRootCertificate))
	if !hs[selfHash(t, p.V2GRoot)] || !hs[selfHash(t, p.V2GRootNew)] {
		t.Errorf("listing lacks one of the two same-DN roots")
	}
}

// TestInstallCAResults is install_ca_certificate's result table: the reference scenarios T18
// (one-line garbage PEM) and T21 (expired root), the cases the reference got wrong and DESIGN.md
// §3 row 10 fixes (leaf offered as CA, not-yet-valid root), and the remaining result codes.
func TestInstallCAResults(t *testing.T) {
	p := newRefPKI(t)
	now := time.Now()
	expired := mustRoot(t, testpki.Spec{CommonName: "OCTTExpiredRootCA", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(-1, 0, 0)})
	future := mustRoot(t, testpki.Spec{CommonName: "NextYearRootCA", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(1, 0, 0), NotAfter: now.AddDate(11, 0, 0)})
	leafSelf := mustRoot(t, testpki.Spec{CommonName: "SelfSignedLeaf"}) // CA:FALSE
	leaf := p.SECCLeaf
	orphanRoot := mustRoot(t, caSpec("NotInstalledRoot"))
	orphanSub := mustIssue(t, orphanRoot, caSpec("OrphanSub"))
	// A sub-CA of the same-DN new root: the installed root has its name, but another key.
	subOfNew := mustIssue(t, p.V2GRootNew, caSpec("SubOfNewRoot"))
	badSig := tampered(t, p.CPOSub1.Cert)
	badSelf := tampered(t, p.InstRoot1.Cert)

	tests := []struct {
		name string
		pem  string
		d    CAType
		want InstallResult
		why  string
	}{
		{"T18 one-line garbage PEM", "-----BEGIN CERTIFICATE-----InvalidCertificate-----END CERTIFICATE-----", CACSMS, InstallInvalidFormat, ""},
		{"plain text", "InvalidCertificate", CACSMS, InstallInvalidFormat, ""},
		{"empty", "", CAV2G, InstallInvalidFormat, ""},
		{"broken base64", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", CAV2G, InstallInvalidFormat, ""},
		{"two certificates", string(testpki.CertsPEM(p.InstRoot1, p.InstRoot2)), CAV2G, InstallInvalidFormat, "exactly one certificate"},
		{"only a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", CAV2G, InstallInvalidFormat, ""},
		{"T21 expired root", string(expired.CertPEM()), CACSMS, InstallExpired, ""},
		{"future root (root rollover)", string(future.CertPEM()), CACSMS, InstallAccepted,
			"adapted: the reference answered Expired for a not-yet-valid CA; DESIGN.md row 10 installs it"},
		{"leaf offered as CA", string(leaf.CertPEM()), CAV2G, InstallInvalidFormat,
			"adapted: the reference accepted any certificate; DESIGN.md row 10 installs only CAs"},
		{"self-signed non-CA", string(leafSelf.CertPEM()), CAV2G, InstallInvalidFormat, "adapted, DESIGN.md row 10"},
		{"sub-CA without its issuer", string(orphanSub.CertPEM()), CAV2G, InstallNoRootCertificate, "evsesec: it could never be named by hash data"},
		{"sub-CA whose root shares a DN with an installed one", string(subOfNew.CertPEM()), CAV2G, InstallNoRootCertificate,
			"the installed root has the name but not the key"},
		{"sub-CA with a broken signature", string(certs.EncodePEM(badSig)), CAV2G, InstallInvalidSignature, ""},
		{"self-issued root with a broken signature", string(certs.EncodePEM(badSelf)), CAV2G, InstallInvalidSignature, ""},
		{"T17 new root, same DN", string(p.V2GRootNew.CertPEM()), CAV2G, InstallAccepted, ""},
		{"sub-CA whose issuer is in another domain", string(p.CPOSub1.CertPEM()), CAMO, InstallAccepted, ""},
		{"DER", string(p.InstRoot1.Cert.Raw), CAMF, InstallAccepted, "README: one PEM (or DER) certificate"},
		{"PEM with text around it", "subject=CN=InstallTestCA\n" + string(p.InstRoot2.CertPEM()) + "trailing\n", CAMF, InstallAccepted, ""},
		{"already installed", string(p.V2GRoot.CertPEM()), CAV2G, InstallAccepted, "stored once"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newCAStore(t)
			ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", p.V2GRoot.CertPEM())
			before := snapshotTree(t, ts.root)
			got := ts.InstallCACertificate(tc.pem, tc.d)
			if got != tc.want {
				t.Fatalf("install_ca_certificate = %s, want %s %s", got, tc.want, tc.why)
			}
			after := snapshotTree(t, ts.root)
			changed := diffTrees(before, after) != ""
			wantChange := tc.want == InstallAccepted && tc.name != "already installed"
			if changed != wantChange {
				t.Errorf("tree changed = %v, want %v:\n%s", changed, wantChange, diffTrees(before, after))
			}
		})
	}
}

// The store-full check comes first (T32) and sums the bytes of every file (DESIGN.md row 1: the
// reference compared only the size of the last file, so its byte limit never worked).
func TestInstallCAStoreLimits(t *testing.T) {
	p := newRefPKI(t)
	for _, tc := range []struct {
		name string
		cfg  func(*Config, int64)
		want InstallResult
	}{
		{"T32 one byte", func(c *Config, _ int64) { c.MaxStoreBytes = 1 }, InstallStoreFull},
		{"bytes summed over files", func(c *Config, total int64) { c.MaxStoreBytes = total }, InstallStoreFull},
		{"one byte below the sum", func(c *Config, total int64) { c.MaxStoreBytes = total + 1 }, InstallAccepted},
		{"entries over the limit", func(c *Config, _ int64) { c.MaxStoreEntries = 4 }, InstallStoreFull},
		{"entries at the limit", func(c *Config, _ int64) { c.MaxStoreEntries = 5 }, InstallAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			setup := openCAStore(t, root)
			// Five files of similar size: no single file reaches the sum.
			setup.write(t, "ca/v2g/V2G_ROOT_CA.pem", p.V2GRoot.CertPEM())
			setup.write(t, "ca/mo/MO_ROOT_CA.pem", p.MORoot.CertPEM())
			setup.write(t, "ca/csms/CSMS_ROOT_CA.pem", p.InstRoot1.CertPEM())
			setup.write(t, "client/cso/SECC_LEAF.pem", p.SECCLeaf.CertPEM())
			setup.write(t, "client/cso/ocsp/x.der", []byte("ocsp"))
			entries, total := setup.Usage()
			if entries != 5 {
				t.Fatalf("usage counts %d files, want 5", entries)
			}
			ts := openCAStore(t, root, withConfig(func(c *Config) { tc.cfg(c, total) }))
			before := snapshotTree(t, root)
			if got := ts.InstallCACertificate(string(p.InstRoot2.CertPEM()), CAMF); got != tc.want {
				t.Fatalf("install = %s, want %s (usage %d files, %d bytes)", got, tc.want, entries, total)
			}
			if tc.want == InstallStoreFull {
				assertTreeUnchanged(t, root, before)
				// Checked before parsing, as in the reference: even garbage gets the limit result.
				if got := ts.InstallCACertificate("garbage", CAMF); got != InstallStoreFull {
					t.Errorf("garbage on a full store = %s", got)
				}
				if got := ts.UpdateLeafCertificate("garbage", LeafV2G); got != InstallStoreFull {
					t.Errorf("garbage leaf on a full store = %s", got)
				}
				if got := ts.InstallCACertificate(string(p.SECCLeaf.CertPEM()), CAMF); got != InstallStoreFull {
					t.Errorf("a leaf as CA on a full store = %s", got)
				}
				assertTreeUnchanged(t, root, before)
			}
		})
	}
}

// T19 (install_root_ca_03): two new roots with one DN add two chains, keep the old ones and are
// listed with their own self hash data.
func TestReferenceInstallTwoSameDNRoots(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	pre := ts.chains(CSMSRootCertificate)
	if len(pre) != 1 {
		t.Fatalf("pre: %d chains, want 1", len(pre))
	}
	ts.installOK(t, CACSMS, p.InstRoot1, p.InstRoot2)
	post := ts.chains(CSMSRootCertificate)
	if len(post) != len(pre)+2 {
		t.Fatalf("post: %d chains, want %d", len(post), len(pre)+2)
	}
	for _, c := range pre {
		if chainOf(post, c.HashData) == nil {
			t.Errorf("old chain %+v is gone", c.HashData)
		}
	}
	for _, r := range []*testpki.Issued{p.InstRoot1, p.InstRoot2} {
		c := chainOf(post, selfHash(t, r))
		if c == nil {
			t.Fatalf("new root %s not listed", r.Cert.SerialNumber)
		}
		if c.CertificateType != CSMSRootCertificate || len(c.Children) != 0 {
			t.Errorf("new root chain %+v", c)
		}
	}
}

// T20 (install_root_ca_04): root, sub-CA 1 and sub-CA 2 installed one by one give one more chain
// whose children are [sub1, sub2], depth first; sub-CAs never become top entries.
func TestReferenceInstallRootAndSubCAs(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(sharedBundleConfig))
	p.writeRefTree(t, ts)
	pre := ts.chains(CSMSRootCertificate)
	ts.installOK(t, CACSMS, p.InstRoot3, p.InstSub1, p.InstSub2)
	post := ts.chains(CSMSRootCertificate)
	if len(post) != len(pre)+1 {
		t.Fatalf("%d chains, want %d", len(post), len(pre)+1)
	}
	c := chainOf(post, selfHash(t, p.InstRoot3))
	if c == nil {
		t.Fatal("ROOT_CA3 not listed")
	}
	want := []certs.HashData{hashOf(t, p.InstSub1, p.InstRoot3), hashOf(t, p.InstSub2, p.InstSub1)}
	if len(c.Children) != 2 || c.Children[0] != want[0] || c.Children[1] != want[1] {
		t.Errorf("children %+v, want %+v", c.Children, want)
	}
	// The exported PEM is byte-identical to the source (T25's check on the shared bundle).
	data := string(ts.read(t, "ca/v2g/V2G_CA_BUNDLE.pem"))
	for _, x := range []*testpki.Issued{p.InstRoot3, p.InstSub1, p.InstSub2} {
		if !strings.Contains(data, string(x.CertPEM())) {
			t.Errorf("bundle lacks the exact PEM of %s", x.Cert.Subject.CommonName)
		}
	}
	// A sub-CA whose issuer is in another domain is a top entry of its own domain.
	ts.installOK(t, CAMO, p.CPOSub1)
	mo := ts.chains(MORootCertificate)
	if c := chainOf(mo, hashOf(t, p.CPOSub1, p.V2GRoot)); c == nil || len(c.Children) != 0 {
		t.Errorf("CPO sub-CA 1 installed as MO is not an MO top entry: %+v", mo)
	}
}

// A directory bundle: installs add evsesec's own files (named by fingerprint, ROOT_CA or
// SUB_CA), never touch other files, and a missing directory is created on the first install.
func TestInstallIntoDirectoryBundle(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
	if ts.IsCACertificateInstalled(CAV2G) {
		t.Fatal("empty domain reports a CA")
	}
	if _, err := os.Stat(ts.path("ca/v2g")); !os.IsNotExist(err) {
		t.Fatal("reading created the bundle directory")
	}
	ts.installOK(t, CAV2G, p.V2GRoot)
	foreign := ts.write(t, "ca/v2g/operator notes.txt", []byte("keep me"))
	ts.write(t, "ca/v2g/V2G_ROOT_CA.key", []byte("not a certificate"))
	ts.installOK(t, CAV2G, p.CPOSub1, p.CPOSub2)
	entries, err := os.ReadDir(ts.path("ca/v2g"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := map[string]*testpki.Issued{
		bundleFileName(CAV2G, p.V2GRoot.Cert, true):  p.V2GRoot,
		bundleFileName(CAV2G, p.CPOSub1.Cert, false): p.CPOSub1,
		bundleFileName(CAV2G, p.CPOSub2.Cert, false): p.CPOSub2,
	}
	if len(names) != 5 {
		t.Errorf("directory holds %v", names)
	}
	for name, c := range want {
		if !strings.HasPrefix(name, "V2G_ROOT_CA_") && !strings.HasPrefix(name, "V2G_SUB_CA_") {
			t.Errorf("file name %q", name)
		}
		if got := string(ts.read(t, "ca/v2g/"+name)); got != string(c.CertPEM()) {
			t.Errorf("%s does not hold exactly %s's PEM", name, c.Cert.Subject.CommonName)
		}
	}
	if b, _ := os.ReadFile(foreign); string(b) != "keep me" {
		t.Error("a foreign file was changed")
	}
	if n := ts.GetCountOfInstalledCertificates([]CertificateType{V2GRootCertificate}); n != 3 {
		t.Errorf("count %d, want 3", n)
	}
	before := snapshotTree(t, ts.root)
	ts.installOK(t, CAV2G, p.CPOSub1) // again: nothing written
	assertTreeUnchanged(t, ts.root, before)
}

// Appending to a bundle file that does not parse would make the new CA as unreadable as the rest
// of the file while answering Accepted. evsesec refuses with WriteError and leaves the file be.
func TestInstallIntoCorruptBundleFile(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t)
	corrupt := append(p.V2GRoot.CertPEM(), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")...)
	ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", corrupt)
	before := snapshotTree(t, ts.root)
	if got := ts.InstallCACertificate(string(p.V2GRootNew.CertPEM()), CAV2G); got != InstallWriteError {
		t.Fatalf("install into a corrupt bundle file = %s, want WriteError", got)
	}
	assertTreeUnchanged(t, ts.root, before)
	// Other domains are not affected (DESIGN.md row 13: one bad file hides nothing else).
	ts.installOK(t, CAMO, p.MORoot)
	if !ts.IsCACertificateInstalled(CAMO) || ts.IsCACertificateInstalled(CAV2G) {
		t.Error("is_ca_certificate_installed: want MO true, V2G false")
	}
	// A corrupt file inside a directory bundle is skipped; installs go on beside it.
	ts2 := newCAStore(t, withConfig(func(c *Config) { c.CSMSCABundle = "ca/csms" }))
	ts2.write(t, "ca/csms/broken.pem", corrupt)
	ts2.installOK(t, CACSMS, p.InstRoot1)
	if got := string(ts2.read(t, "ca/csms/broken.pem")); got != string(corrupt) {
		t.Error("the broken file was changed")
	}
	if !ts2.IsCACertificateInstalled(CACSMS) {
		t.Error("the root installed beside a broken file is not found")
	}
}

// is_ca_certificate_installed (§7.11): a trust anchor valid now. Adapted where DESIGN.md differs:
// a sub-CA installed without its root counts (partial chains are trusted, README "Trust").
func TestIsCACertificateInstalled(t *testing.T) {
	p := newRefPKI(t)
	now := time.Now()
	expiredRoot := mustRoot(t, testpki.Spec{CommonName: "Old", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(-3, 0, 0), NotAfter: now.AddDate(-1, 0, 0)})
	subOfExpired := mustIssue(t, expiredRoot, testpki.Spec{CommonName: "SubOfOld", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(2, 0, 0)})
	for _, tc := range []struct {
		name   string
		bundle []byte
		want   bool
	}{
		{"missing", nil, false},
		{"empty file", []byte{}, false},
		{"valid root", p.V2GRoot.CertPEM(), true},
		{"expired root only", expiredRoot.CertPEM(), false},
		{"expired root with its valid sub-CA", testpki.CertsPEM(expiredRoot, subOfExpired), false},
		{"sub-CA without root", p.CPOSub1.CertPEM(), true},
		{"future root only", mustRoot(t, testpki.Spec{CommonName: "F", IsCA: true, NotBefore: now.Add(time.Hour), NotAfter: now.AddDate(1, 0, 0)}).CertPEM(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newCAStore(t)
			if tc.bundle != nil {
				ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", tc.bundle)
			}
			if got := ts.IsCACertificateInstalled(CAV2G); got != tc.want {
				t.Errorf("= %v, want %v", got, tc.want)
			}
			if ts.IsCACertificateInstalled(CAMO) {
				t.Error("MO reports a CA")
			}
		})
	}
}

// DESIGN.md row 8: expired and not yet valid CAs keep their place in the hierarchy, so they are
// listed (with what they issued) and can be deleted by hash. The reference lost their hash data.
func TestExpiredAndFutureCAsListedAndDeletable(t *testing.T) {
	now := time.Now()
	expiredRoot := mustRoot(t, testpki.Spec{CommonName: "ExpiredRoot", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(-1, 0, 0)})
	expiredSub := mustIssue(t, expiredRoot, testpki.Spec{CommonName: "ExpiredSub", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(-2, 0, 0)})
	futureRoot := mustRoot(t, testpki.Spec{CommonName: "FutureRoot", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(1, 0, 0), NotAfter: now.AddDate(10, 0, 0)})
	futureSub := mustIssue(t, futureRoot, testpki.Spec{CommonName: "FutureSub", IsCA: true, MaxPathLen: -1,
		NotBefore: now.AddDate(1, 0, 0), NotAfter: now.AddDate(9, 0, 0)})

	ts := newCAStore(t)
	// An expired CA cannot be installed any more; it is in the tree from before.
	ts.write(t, "ca/csms/CSMS_ROOT_CA.pem", testpki.CertsPEM(expiredRoot, expiredSub))
	ts.installOK(t, CACSMS, futureRoot, futureSub)

	chains := ts.chains(CSMSRootCertificate)
	if len(chains) != 2 {
		t.Fatalf("%d chains, want 2: %+v", len(chains), chains)
	}
	for _, tc := range []struct{ root, sub *testpki.Issued }{{expiredRoot, expiredSub}, {futureRoot, futureSub}} {
		c := chainOf(chains, selfHash(t, tc.root))
		if c == nil || len(c.Children) != 1 || c.Children[0] != hashOf(t, tc.sub, tc.root) {
			t.Errorf("%s: chain %+v", tc.root.Cert.Subject.CommonName, c)
		}
	}
	if got := ts.DeleteCertificate(hashOf(t, expiredSub, expiredRoot)); got != DeleteAccepted {
		t.Errorf("delete expired sub-CA = %s", got)
	}
	if got := ts.DeleteCertificate(selfHash(t, futureRoot)); got != DeleteAccepted {
		t.Errorf("delete future root = %s", got)
	}
	cs := certsInFile(t, ts.path("ca/csms/CSMS_ROOT_CA.pem"))
	if len(cs) != 1 || !containsCert(cs, expiredRoot.Cert) {
		t.Errorf("bundle holds %d certificates; want only the expired root", len(cs))
	}
	if got := ts.DeleteCertificate(selfHash(t, expiredRoot)); got != DeleteAccepted {
		t.Errorf("delete expired root = %s", got)
	}
	if got := ts.GetInstalledCertificates([]CertificateType{CSMSRootCertificate}); got.Status != InstalledNotFound || len(got.Chains) != 0 {
		t.Errorf("after deleting everything: %+v", got)
	}
}

// A root re-issued with the same name and key (new dates) is a second root, not a child of the
// first: each is listed as a top entry with the sub-CAs below it, and deleting one leaves the
// sub-CAs the other still issues. (Pool.Issuers used to return the twin, so each root was listed
// as the other's child.)
func TestReissuedRootSameKey(t *testing.T) {
	r1 := mustRoot(t, caSpec("StableRoot"))
	spec := caSpec("StableRoot")
	spec.Key = r1.Key
	spec.NotAfter = time.Now().AddDate(20, 0, 0)
	r2 := mustRoot(t, spec)
	sub := mustIssue(t, r1, caSpec("StableSub"))

	ts := newCAStore(t)
	ts.installOK(t, CAV2G, r1, r2, sub)
	chains := ts.chains(V2GRootCertificate)
	if len(chains) != 2 {
		t.Fatalf("%d chains, want 2 (one per root): %+v", len(chains), chains)
	}
	subHash := hashOf(t, sub, r1)
	if subHash != hashOf(t, sub, r2) {
		t.Fatal("same name and key must give the same hash data")
	}
	for _, c := range chains {
		if len(c.Children) != 1 || c.Children[0] != subHash {
			t.Errorf("chain %+v: want exactly the sub-CA as child", c.HashData)
		}
	}
	// r1 and r2 have identical hash data (same issuer name, key and... different serials).
	if got := ts.DeleteCertificate(selfHash(t, r1)); got != DeleteAccepted {
		t.Fatalf("delete r1 = %s", got)
	}
	cs := certsInFile(t, ts.path("ca/v2g/V2G_ROOT_CA.pem"))
	if len(cs) != 2 || !containsCert(cs, r2.Cert) || !containsCert(cs, sub.Cert) {
		t.Errorf("after deleting r1 the bundle holds %d certificates; want r2 and the sub-CA", len(cs))
	}
}

// The store caches parsed files and pools by the identity of the parsed file. A file version that
// is replaced must never be mistaken for the next one, also when the garbage collector has freed
// the old version and its address is handed out again (the pool cache used to key pools by
// address without keeping the files alive).
func TestCacheSeesEveryVersion(t *testing.T) {
	ts := newCAStore(t)
	present := 0
	check := func(step string) {
		t.Helper()
		runtime.GC()
		if n := len(ts.chains(V2GRootCertificate)); n != present {
			t.Fatalf("%s: %d chains listed, want %d", step, n, present)
		}
		if n := ts.GetCountOfInstalledCertificates([]CertificateType{V2GRootCertificate}); n != present {
			t.Fatalf("%s: count %d, want %d", step, n, present)
		}
	}
	for i := 0; i < 45; i++ {
		r := mustRoot(t, testpki.Spec{CommonName: "R", IsCA: true, MaxPathLen: -1, Serial: big.NewInt(int64(i + 1))})
		ts.installOK(t, CAV2G, r)
		present++
		check("install")
		if i%3 == 2 {
			// The file shrinks back to a size it had before.
			if got := ts.DeleteCertificate(selfHash(t, r)); got != DeleteAccepted {
				t.Fatalf("delete: %s", got)
			}
			present--
			check("delete")
		}
	}
}

// staleStatFS reports the same modification time and no inode for every file, like a coarse
// timestamp tick with a recycled inode number: a rewrite of the same size is invisible to the
// stat-based cache.
type staleStatFS struct{ OSFS }

type staleInfo struct{ os.FileInfo }

func (staleInfo) ModTime() time.Time { return time.Unix(1700000000, 0) }
func (staleInfo) Sys() any           { return nil }

func (f staleStatFS) Stat(name string) (os.FileInfo, error) {
	fi, err := f.OSFS.Stat(name)
	if err != nil {
		return nil, err
	}
	return staleInfo{fi}, nil
}

// A write must be based on the bundle as it is on disk: another process replaced root A by root
// B (same size, same stamp). Deleting A must find nothing and must not write the stale copy back,
// which would delete B.
func TestWriteUsesFileAsOnDisk(t *testing.T) {
	var a, b *testpki.Issued
	for a == nil {
		x := mustRoot(t, testpki.Spec{CommonName: "SameSizeRoot", IsCA: true, MaxPathLen: -1, Serial: big.NewInt(7)})
		y := mustRoot(t, testpki.Spec{CommonName: "SameSizeRoot", IsCA: true, MaxPathLen: -1, Serial: big.NewInt(7)})
		if len(x.CertPEM()) == len(y.CertPEM()) {
			a, b = x, y
		}
	}
	ts := newCAStore(t, withFS(staleStatFS{}))
	ts.installOK(t, CAV2G, a)
	if !ts.IsCACertificateInstalled(CAV2G) {
		t.Fatal("not installed")
	}
	// The other process.
	ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", b.CertPEM())
	if got := ts.DeleteCertificate(selfHash(t, a)); got != DeleteNotFound {
		t.Errorf("delete of the replaced root = %s, want NotFound", got)
	}
	if got := string(ts.read(t, "ca/v2g/V2G_ROOT_CA.pem")); got != string(b.CertPEM()) {
		t.Fatal("the other process's root was written away")
	}
	// Installing A again must not be answered from the stale copy ("already installed").
	ts.installOK(t, CAV2G, a)
	cs := certsInFile(t, ts.path("ca/v2g/V2G_ROOT_CA.pem"))
	if len(cs) != 2 || !containsCert(cs, a.Cert) || !containsCert(cs, b.Cert) {
		t.Errorf("bundle holds %d certificates, want A and B", len(cs))
	}
}

// The limits count the data of the store: a configured bundle that is a symlink counts with the
// file it points at; the hash links get_verify_location adds, and the derived files under
// .evsesec/, do not count.
func TestUsageCountsData(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(func(c *Config) { c.MOCABundle = "ca/mo" }))
	elsewhere := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(elsewhere, testpki.CertsPEM(p.V2GRoot, p.V2GRootNew), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ts.path("ca/v2g"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, ts.path("ca/v2g/V2G_ROOT_CA.pem")); err != nil {
		t.Fatal(err)
	}
	ts.installOK(t, CAMO, p.MORoot, p.MOSub1)
	moSize := int64(len(p.MORoot.CertPEM()) + len(p.MOSub1.CertPEM()))
	want := int64(len(testpki.CertsPEM(p.V2GRoot, p.V2GRootNew))) + moSize
	if n, size := ts.Usage(); n != 3 || size != want {
		t.Errorf("usage %d files, %d bytes; want 3, %d", n, size, want)
	}
	if ts.GetVerifyLocation(CAMO) != ts.path("ca/mo") || ts.GetVerifyFile(CAMO) == "" {
		t.Fatal("no verify location")
	}
	if n, size := ts.Usage(); n != 3 || size != want {
		t.Errorf("after get_verify_location: usage %d files, %d bytes; want 3, %d", n, size, want)
	}
}
