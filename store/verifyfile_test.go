package store

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// writeLeaf puts a PEM file for openssl into a temporary directory.
func writeLeaf(t *testing.T, name string, pem []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslAccepts runs `openssl verify ARGS LEAF` and fails the test unless OpenSSL accepts.
func opensslAccepts(t *testing.T, leaf string, args ...string) {
	t.Helper()
	if code, out := opensslVerify(t, "", append(args, leaf)...); code != 0 {
		t.Errorf("openssl verify %s %s: error %d\n%s", strings.Join(args, " "), filepath.Base(leaf), code, out)
	}
}

// opensslRejects runs `openssl verify ARGS LEAF` and fails the test if OpenSSL accepts.
func opensslRejects(t *testing.T, leaf string, args ...string) {
	t.Helper()
	if code, _ := opensslVerify(t, "", append(args, leaf)...); code == 0 {
		t.Errorf("openssl verify %s %s accepted", strings.Join(args, " "), filepath.Base(leaf))
	}
}

// linksIn returns the symlinks of dir: name → target.
func linksIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = target
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// get_verify_location on a directory bundle makes OpenSSL's hash links: their names are what
// `openssl x509 -subject_hash` and `openssl rehash` compute, `openssl verify -CApath` accepts the
// directory, and a second call changes nothing.
func TestVerifyLocationOfDirectoryWithOpenSSL(t *testing.T) {
	o := newOSSLPKI(t)
	ca := osslOpts{CA: true, Days: 3650}
	// Names that OpenSSL canonicalises (case, spaces) and two roots with one DN.
	root := o.root("root", "/CN=  Station   ROOT /O=EVerest/C=DE", ca)
	twin := o.root("twin", "/CN=station root/O=everest/C=de", ca)
	sub := o.issue(root, "sub", "/CN=Sub CA/O=EVerest", ca)
	leaf := o.issue(sub, "leaf", "/CN=Leaf/O=EVerest", osslOpts{Days: 30})
	twinLeaf := o.issue(twin, "twinleaf", "/CN=Twin Leaf", osslOpts{Days: 30})

	ts := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
	for _, c := range []*osslCert{root, twin, sub} {
		if got := ts.InstallCACertificate(c.PEM, CAV2G); got != InstallAccepted {
			t.Fatalf("install %s: %s", c.Name, got)
		}
	}
	dir := ts.path("ca/v2g")
	// A copy of the directory as it is now, for `openssl rehash` to link on its own.
	ref := t.TempDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(ref, e.Name()), data, 0o644)
	}

	if got := ts.GetVerifyLocation(CAV2G); got != dir {
		t.Fatalf("get_verify_location = %q, want the directory %q", got, dir)
	}
	links := linksIn(t, dir)
	if len(links) != 3 {
		t.Fatalf("links %v, want 3", links)
	}
	// The names are OpenSSL's subject hashes; every certificate is reachable.
	for _, c := range []*osslCert{root, twin, sub} {
		h := strings.TrimSpace(runOpenSSL(t, "", "x509", "-subject_hash", "-noout", "-in", c.CertPath))
		if got := certs.FormatNameHash(certs.SubjectHash(c.Cert)); got != h {
			t.Errorf("%s: subject hash %s, openssl %s", c.Name, got, h)
		}
		found := false
		for name, target := range links {
			if strings.HasPrefix(name, h+".") && target == bundleFileName(CAV2G, c.Cert, certs.IsSelfSigned(c.Cert)) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (hash %s) has no link: %v", c.Name, h, links)
		}
	}
	runOpenSSL(t, "", "rehash", ref)
	if got, want := sortedKeys(links), sortedKeys(linksIn(t, ref)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("link names %v, openssl rehash makes %v", got, want)
	}
	opensslAccepts(t, leaf.CertPath, "-CApath", dir)
	opensslAccepts(t, twinLeaf.CertPath, "-CApath", dir)

	before := snapshotTree(t, ts.root)
	if got := ts.GetVerifyLocation(CAV2G); got != dir {
		t.Fatalf("second call = %q", got)
	}
	assertTreeUnchanged(t, ts.root, before)

	// get_verify_file on the same directory: one combined file OpenSSL takes as CAfile.
	file := ts.GetVerifyFile(CAV2G)
	if file != ts.path(".evsesec/V2G_CA_BUNDLE.pem") {
		t.Fatalf("get_verify_file = %q", file)
	}
	if n := len(certsInFile(t, file)); n != 3 {
		t.Errorf("combined file holds %d certificates, want 3", n)
	}
	opensslAccepts(t, leaf.CertPath, "-CAfile", file)
	opensslAccepts(t, twinLeaf.CertPath, "-CAfile", file)
	before = snapshotTree(t, ts.root)
	if again := ts.GetVerifyFile(CAV2G); again != file {
		t.Errorf("second get_verify_file = %q", again)
	}
	assertTreeUnchanged(t, ts.root, before)
}

// A read-only bundle directory gets a hashed copy under the certs root's .evsesec/ that OpenSSL
// accepts, and the directory is not touched. Two ways to be read-only: mode 0555 (which root
// ignores, so then the links go into the directory as usual) and a filesystem that answers EROFS.
func TestVerifyLocationOfReadOnlyDirectory(t *testing.T) {
	p := newRefPKI(t)
	leaf := writeLeaf(t, "leaf.pem", p.SECCLeaf.CertPEM())
	setup := func(t *testing.T, opts ...caStoreOption) *caTestStore {
		ts := newCAStore(t, append([]caStoreOption{withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" })}, opts...)...)
		ts.write(t, "ca/v2g/V2G_CA_BUNDLE.pem", testpki.CertsPEM(p.CPOSub2, p.CPOSub1, p.V2GRoot))
		ts.write(t, "ca/v2g/V2G_ROOT_CA_NEW.pem", p.V2GRootNew.CertPEM())
		return ts
	}
	checkCopy := func(t *testing.T, ts *caTestStore, got string) {
		t.Helper()
		want := ts.path(".evsesec/V2G_CA_HASHED")
		if got != want {
			t.Fatalf("get_verify_location = %q, want the hashed copy %q", got, want)
		}
		entries, err := os.ReadDir(got)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		var wantNames []string
		for _, c := range []*testpki.Issued{p.V2GRoot, p.V2GRootNew, p.CPOSub1, p.CPOSub2} {
			wantNames = append(wantNames, certs.FormatNameHash(certs.SubjectHash(c.Cert)))
		}
		if len(names) != 4 {
			t.Errorf("hashed copy holds %v", names)
		}
		for _, n := range names {
			h, _, _ := strings.Cut(n, ".")
			if !strings.Contains(strings.Join(wantNames, " "), h) {
				t.Errorf("unexpected entry %s", n)
			}
		}
		opensslAccepts(t, leaf, "-CApath", got)
	}

	t.Run("mode 0555", func(t *testing.T) {
		ts := setup(t)
		dir := ts.path("ca/v2g")
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		before := snapshotTree(t, dir)
		got := ts.GetVerifyLocation(CAV2G)
		if os.Geteuid() == 0 {
			// root writes into a 0555 directory anyway: the links go in place.
			if got != dir {
				t.Fatalf("as root: get_verify_location = %q, want %q", got, dir)
			}
			opensslAccepts(t, leaf, "-CApath", got)
			return
		}
		checkCopy(t, ts, got)
		assertTreeUnchanged(t, dir, before)
	})
	t.Run("EROFS", func(t *testing.T) {
		ts := setup(t)
		ts2 := openCAStore(t, ts.root, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }), withFS(&faultFS{
			failCreate: under(ts.path("ca/v2g")), failSymlink: under(ts.path("ca/v2g"))}))
		before := snapshotTree(t, ts.path("ca/v2g"))
		checkCopy(t, ts2, ts2.GetVerifyLocation(CAV2G))
		assertTreeUnchanged(t, ts.path("ca/v2g"), before)
		// Symlinks failing alone (a filesystem without them): the probe passes, the links do
		// not; the copy is made all the same and no half-made link stays behind.
		ts3 := openCAStore(t, ts.root, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }), withFS(&faultFS{failSymlink: under(ts.path("ca/v2g"))}))
		checkCopy(t, ts3, ts3.GetVerifyLocation(CAV2G))
		if l := linksIn(t, ts.path("ca/v2g")); len(l) != 0 {
			t.Errorf("links left behind: %v", l)
		}
	})
}

// A TLS stack keeps the path it was given. After install_ca_certificate or delete_certificate on
// a directory bundle, the hash links, the combined file and the hashed copy it was given must
// already say the new truth: a new root is trusted, a deleted one is not, and a remaining root
// with the deleted one's DN is still found (a dangling HASH.0 would hide HASH.1 from OpenSSL).
func TestDerivedFilesFollowInstallAndDelete(t *testing.T) {
	p := newRefPKI(t)
	newLeaf := mustIssue(t, p.V2GRootNew, leafSpec("LeafOfNewRoot"))
	chainOld := writeLeaf(t, "old.pem", p.SECCLeaf.CertPEM())
	leafNew := writeLeaf(t, "new.pem", newLeaf.CertPEM())

	ts := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
	ts.installOK(t, CAV2G, p.V2GRoot, p.CPOSub1, p.CPOSub2)
	dir := ts.GetVerifyLocation(CAV2G)
	file := ts.GetVerifyFile(CAV2G)
	if dir != ts.path("ca/v2g") || file == "" {
		t.Fatalf("locations %q %q", dir, file)
	}
	opensslAccepts(t, chainOld, "-CApath", dir)
	opensslRejects(t, leafNew, "-CApath", dir)

	ts.installOK(t, CAV2G, p.V2GRootNew) // same DN as the old root: HASH.1
	for _, args := range [][]string{{"-CApath", dir}, {"-CAfile", file}} {
		opensslAccepts(t, leafNew, args...)
		opensslAccepts(t, chainOld, args...)
	}
	if got := ts.DeleteCertificate(selfHash(t, p.V2GRoot)); got != DeleteAccepted {
		t.Fatalf("delete old root = %s", got)
	}
	for _, args := range [][]string{{"-CApath", dir}, {"-CAfile", file}} {
		opensslAccepts(t, leafNew, args...)
		opensslRejects(t, chainOld, args...)
	}
	for name, target := range linksIn(t, dir) {
		if _, err := os.Stat(filepath.Join(dir, target)); err != nil {
			t.Errorf("dangling link %s → %s", name, target)
		}
	}
	if got := ts.DeleteCertificate(selfHash(t, p.V2GRootNew)); got != DeleteAccepted {
		t.Fatalf("delete new root = %s", got)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("combined file of an empty domain still exists: %v", err)
	}
	if l := linksIn(t, dir); len(l) != 0 {
		t.Errorf("links of an empty directory: %v", l)
	}

	// The hashed copy of a directory whose links cannot be made follows the same way.
	ts2 := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
	ts2.installOK(t, CAV2G, p.V2GRoot, p.CPOSub1, p.CPOSub2)
	noLinks := openCAStore(t, ts2.root, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }),
		withFS(&faultFS{failSymlink: under(ts2.path("ca/v2g"))}))
	copyDir := noLinks.GetVerifyLocation(CAV2G)
	if copyDir != ts2.path(".evsesec/V2G_CA_HASHED") {
		t.Fatalf("location = %q", copyDir)
	}
	opensslAccepts(t, chainOld, "-CApath", copyDir)
	noLinks.installOK(t, CAV2G, p.V2GRootNew)
	opensslAccepts(t, leafNew, "-CApath", copyDir)
	if got := noLinks.DeleteCertificate(selfHash(t, p.V2GRoot)); got != DeleteAccepted {
		t.Fatal(got)
	}
	opensslRejects(t, chainOld, "-CApath", copyDir)
	opensslAccepts(t, leafNew, "-CApath", copyDir)
}

// Hash-named entries evsesec did not make are not its to change: a regular file with a hash
// name, a CRL link (HASH.r0), a link to a certificate outside the directory. They are kept, and
// evsesec's own links are numbered around them so OpenSSL still finds everything.
func TestRehashLeavesForeignEntries(t *testing.T) {
	p := newRefPKI(t)
	ts := newCAStore(t, withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" }))
	ts.installOK(t, CAV2G, p.V2GRoot, p.CPOSub1, p.CPOSub2)
	dir := ts.path("ca/v2g")
	rootHash := certs.FormatNameHash(certs.SubjectHash(p.V2GRoot.Cert))
	// The operator's own hashed copy of the new root (same DN) under the name HASH.0.
	ts.write(t, "ca/v2g/"+rootHash+".0", p.V2GRootNew.CertPEM())
	// A CRL link as c_rehash makes it, and a link to a certificate elsewhere.
	crl := ts.write(t, "ca/v2g/revoked.crl", []byte("not parsed"))
	if err := os.Symlink(filepath.Base(crl), filepath.Join(dir, rootHash+".r0")); err != nil {
		t.Fatal(err)
	}
	outside := writeLeaf(t, "outside.pem", p.MORoot.CertPEM())
	moHash := certs.FormatNameHash(certs.SubjectHash(p.MORoot.Cert))
	if err := os.Symlink(outside, filepath.Join(dir, moHash+".0")); err != nil {
		t.Fatal(err)
	}
	before := snapshotTree(t, dir)
	if got := ts.GetVerifyLocation(CAV2G); got != dir {
		t.Fatalf("location %q", got)
	}
	after := snapshotTree(t, dir)
	for name, st := range before {
		if after[name] != st {
			t.Errorf("foreign entry %s changed", name)
		}
	}
	links := linksIn(t, dir)
	if links[rootHash+".1"] != bundleFileName(CAV2G, p.V2GRoot.Cert, true) {
		t.Errorf("the root's link is not numbered after the foreign %s.0: %v", rootHash, links)
	}
	opensslAccepts(t, writeLeaf(t, "leaf.pem", p.SECCLeaf.CertPEM()), "-CApath", dir)
	opensslAccepts(t, writeLeaf(t, "mo.pem", mustIssue(t, p.MORoot, leafSpec("MO")).CertPEM()), "-CApath", dir)
	opensslAccepts(t, writeLeaf(t, "new.pem", mustIssue(t, p.V2GRootNew, leafSpec("N")).CertPEM()), "-CApath", dir)
	// Deleting and rehashing keeps them too.
	if got := ts.DeleteCertificate(hashOf(t, p.CPOSub2, p.CPOSub1)); got != DeleteAccepted {
		t.Fatal(got)
	}
	after = snapshotTree(t, dir)
	for _, name := range []string{rootHash + ".0", rootHash + ".r0", "revoked.crl", moHash + ".0"} {
		if after[name] != before[name] {
			t.Errorf("foreign entry %s changed by delete", name)
		}
	}
}

// When the certs root cannot be written at all, derived files go to a directory private to this
// process (a fresh os.MkdirTemp directory, mode 0700): two stores never share one (a store would
// otherwise hand out a directory trusting the other store's roots), nothing another user left at
// the old predictable path ($TMPDIR/evsesec-<uid>) is used or followed, and Close removes it all.
func TestDerivedFilesOfReadOnlyTree(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// Another user prepared the old per-user path: a symlink to a directory they own.
	theirs := t.TempDir()
	if err := os.Chmod(theirs, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(theirs, foreignUID, foreignUID); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(tmp, "evsesec-"+strconv.Itoa(os.Getuid()))
	if err := os.Symlink(theirs, old); err != nil {
		t.Fatal(err)
	}
	planted := map[string]bool{filepath.Base(old): true}

	p := newRefPKI(t)
	readOnly := func(root string) caStoreOption {
		return withFS(&faultFS{failCreate: under(root), failSymlink: under(root)})
	}
	dirCfg := withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" })
	rootA, rootB := t.TempDir(), t.TempDir()
	a := openCAStore(t, rootA, dirCfg)
	a.installOK(t, CAV2G, p.V2GRoot, p.CPOSub1, p.CPOSub2)
	b := openCAStore(t, rootB, dirCfg)
	b.installOK(t, CAV2G, p.V2GRootNew)

	roA, roB := openCAStore(t, rootA, dirCfg, readOnly(rootA)), openCAStore(t, rootB, dirCfg, readOnly(rootB))
	locA, locB := roA.GetVerifyLocation(CAV2G), roB.GetVerifyLocation(CAV2G)
	fileA, fileB := roA.GetVerifyFile(CAV2G), roB.GetVerifyFile(CAV2G)
	for _, l := range []string{locA, locB, fileA, fileB} {
		if !strings.HasPrefix(l, tmp+string(filepath.Separator)) || strings.HasPrefix(l, old) {
			t.Fatalf("derived path %q is not in a private directory under TMPDIR %q", l, tmp)
		}
	}
	if locA == locB || fileA == fileB || filepath.Dir(locA) == filepath.Dir(locB) {
		t.Fatalf("two stores share derived paths: %q %q / %q %q", locA, locB, fileA, fileB)
	}
	for _, dir := range []string{filepath.Dir(locA), filepath.Dir(locB)} {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
			t.Errorf("private directory %s: %v %v; want a 0700 directory of this user", dir, fi, err)
		}
	}
	leafA := writeLeaf(t, "a.pem", p.SECCLeaf.CertPEM())
	leafB := writeLeaf(t, "b.pem", mustIssue(t, p.V2GRootNew, leafSpec("B")).CertPEM())
	opensslAccepts(t, leafA, "-CApath", locA)
	opensslRejects(t, leafB, "-CApath", locA)
	opensslAccepts(t, leafB, "-CApath", locB)
	opensslRejects(t, leafA, "-CApath", locB)
	opensslAccepts(t, leafA, "-CAfile", fileA)
	opensslRejects(t, leafB, "-CAfile", fileA)
	if n := len(certsInFile(t, fileA)); n != 3 {
		t.Errorf("combined file of A holds %d certificates", n)
	}
	if entries, err := os.ReadDir(theirs); err != nil || len(entries) != 0 {
		t.Errorf("wrote into the directory at the old path: %v %v", entries, err)
	}

	// Close removes what the store made; nothing is made after it.
	for _, s := range []*caTestStore{roA, roB} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{locA, locB, fileA, fileB, filepath.Dir(locA), filepath.Dir(locB)} {
		if _, err := os.Lstat(l); !os.IsNotExist(err) {
			t.Errorf("%s left behind after Close: %v", l, err)
		}
	}
	if got := roA.GetVerifyLocation(CAV2G); got != "" {
		t.Errorf("get_verify_location after Close = %q", got)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !planted[e.Name()] {
			t.Errorf("left in TMPDIR: %s", e.Name())
		}
	}

	// With no place for a private directory, get_verify_file falls back to the file holding the
	// root (README).
	t.Setenv("TMPDIR", filepath.Join(tmp, "missing"))
	roC := openCAStore(t, rootA, dirCfg, readOnly(rootA))
	defer roC.Close()
	if got := roC.GetVerifyFile(CAV2G); got != a.path("ca/v2g/"+bundleFileName(CAV2G, p.V2GRoot.Cert, true)) {
		t.Errorf("verify file with no place for the combined file = %q", got)
	}
}

// A store whose lock another user planted answers get_verify_location from a private directory:
// the bundle directory is not changed without the lock.
func TestVerifyLocationWithoutTheLock(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	p := newRefPKI(t)
	dirCfg := withConfig(func(c *Config) { c.V2GCABundle = "ca/v2g" })
	root := t.TempDir()
	openCAStore(t, root, dirCfg).installOK(t, CAV2G, p.V2GRoot)
	lock := filepath.Join(root, LockFileName)
	if err := os.WriteFile(lock, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(lock, foreignUID, foreignUID); err != nil {
		t.Fatal(err)
	}
	s := openCAStore(t, root, dirCfg)
	defer s.Close()
	before := snapshotTree(t, root)
	loc := s.GetVerifyLocation(CAV2G)
	if loc == "" || strings.HasPrefix(loc, root) {
		t.Fatalf("get_verify_location without the lock = %q, want a private directory", loc)
	}
	opensslAccepts(t, writeLeaf(t, "leaf.pem", mustIssue(t, p.V2GRoot, leafSpec("L")).CertPEM()), "-CApath", loc)
	assertTreeUnchanged(t, root, before)
	if r := s.InstallCACertificate(string(p.V2GRootNew.CertPEM()), CAV2G); r != InstallWriteError {
		t.Errorf("install without the lock: %s, want WriteError", r)
	}
	assertTreeUnchanged(t, root, before)
}
