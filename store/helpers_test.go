package store

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"github.com/evsesec/evsesec/internal/testtool"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// requireTool returns the path of an external program a test uses as an oracle. When it is
// missing the test is skipped on a developer machine, but fails in CI (CI=true), where a skipped
// differential test would silently hide a regression.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Require(t, name)
}

// ---- stores -------------------------------------------------------------------------------

// caTestStore is a store in a temporary certs root with the events it emitted.
type caTestStore struct {
	*Store
	root string

	mu     sync.Mutex
	events []Event
}

// caStoreOption adjusts the config and options of newCAStore.
type caStoreOption func(*Config, *Options)

// withClock fixes the store's clock.
func withClock(now time.Time) caStoreOption {
	return func(_ *Config, o *Options) { o.Clock = func() time.Time { return now } }
}

// withFS plugs in a filesystem.
func withFS(fsys FS) caStoreOption { return func(_ *Config, o *Options) { o.FS = fsys } }

// withConfig edits the config before the store is opened.
func withConfig(f func(*Config)) caStoreOption { return func(c *Config, _ *Options) { f(c) } }

// sharedBundleConfig is the reference suite's configuration (libevse-security-tests.md §2.3): the
// V2G, CSMS and MF domains share one bundle file, MO has its own.
func sharedBundleConfig(c *Config) {
	c.V2GCABundle = "ca/v2g/V2G_CA_BUNDLE.pem"
	c.CSMSCABundle = "ca/v2g/V2G_CA_BUNDLE.pem"
	c.MFCABundle = "ca/v2g/V2G_CA_BUNDLE.pem"
	c.MOCABundle = "ca/mo/MO_CA_BUNDLE.pem"
}

// newCAStore opens a store with the EVerest default layout under a new temporary root (or root,
// when given through withRoot).
func newCAStore(t testing.TB, opts ...caStoreOption) *caTestStore {
	t.Helper()
	return openCAStore(t, t.TempDir(), opts...)
}

// openCAStore opens a store on an existing root.
func openCAStore(t testing.TB, root string, opts ...caStoreOption) *caTestStore {
	t.Helper()
	ts := &caTestStore{root: root}
	cfg := DefaultConfig(root)
	var o Options
	for _, f := range opts {
		f(&cfg, &o)
	}
	o.OnEvent = func(e Event) {
		ts.mu.Lock()
		ts.events = append(ts.events, e)
		ts.mu.Unlock()
	}
	s, err := Open(cfg, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ts.Store = s
	return ts
}

// takeEvents returns the events emitted since the last call.
func (ts *caTestStore) takeEvents() []Event {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e := ts.events
	ts.events = nil
	return e
}

// path resolves a path relative to the store's root.
func (ts *caTestStore) path(rel string) string {
	return filepath.Join(ts.root, filepath.FromSlash(rel))
}

// write puts a file into the tree (as an installer or an operator would), creating directories.
func (ts *caTestStore) write(t testing.TB, rel string, data []byte) string {
	t.Helper()
	p := ts.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// read returns a file of the tree.
func (ts *caTestStore) read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(ts.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// installOK installs c into domain d and fails the test unless the result is Accepted.
func (ts *caTestStore) installOK(t testing.TB, d CAType, cs ...*testpki.Issued) {
	t.Helper()
	for _, c := range cs {
		if got := ts.InstallCACertificate(string(c.CertPEM()), d); got != InstallAccepted {
			t.Fatalf("install %q into %s: %s, want Accepted", c.Cert.Subject.CommonName, d, got)
		}
	}
}

// chains returns get_installed_certificates for the given types.
func (ts *caTestStore) chains(types ...CertificateType) []HashDataChain {
	return ts.GetInstalledCertificates(types).Chains
}

// allRootTypes are the four root certificate types.
var allRootTypes = []CertificateType{V2GRootCertificate, MORootCertificate, CSMSRootCertificate, MFRootCertificate}

// listedHashes returns every hash data (tops and children) in chains, normalized.
func listedHashes(chains []HashDataChain) map[certs.HashData]bool {
	out := map[certs.HashData]bool{}
	for _, c := range chains {
		out[c.HashData.Normalize()] = true
		for _, ch := range c.Children {
			out[ch.Normalize()] = true
		}
	}
	return out
}

// chainOf returns the chain whose top is h, or nil.
func chainOf(chains []HashDataChain, h certs.HashData) *HashDataChain {
	for i := range chains {
		if chains[i].HashData.Equal(h) {
			return &chains[i]
		}
	}
	return nil
}

// ---- certificates -------------------------------------------------------------------------

// hashOf is the OCPP hash data of c issued by issuer (c itself for a root), SHA-256.
func hashOf(t testing.TB, c, issuer *testpki.Issued) certs.HashData {
	t.Helper()
	return hashOfAlg(t, c, issuer, certs.SHA256)
}

func hashOfAlg(t testing.TB, c, issuer *testpki.Issued, alg certs.HashAlgorithm) certs.HashData {
	t.Helper()
	if issuer == nil {
		issuer = c
	}
	h, err := certs.ComputeHashData(c.Cert, issuer.Cert, alg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// selfHash is the hash data of a self-signed certificate.
func selfHash(t testing.TB, c *testpki.Issued) certs.HashData { return hashOf(t, c, nil) }

// caSpec is a CA profile valid from an hour ago for ten years.
func caSpec(cn string) testpki.Spec {
	return testpki.Spec{CommonName: cn, Organization: "EVerest", Country: "DE", DomainComponent: "V2G", IsCA: true, MaxPathLen: -1}
}

// leafSpec is a leaf profile.
func leafSpec(cn string) testpki.Spec {
	return testpki.Spec{CommonName: cn, Organization: "EVerest", Country: "DE", DomainComponent: "CPO"}
}

func mustRoot(t testing.TB, spec testpki.Spec) *testpki.Issued {
	t.Helper()
	c, err := testpki.SelfSigned(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustIssue(t testing.TB, ca *testpki.Issued, spec testpki.Spec) *testpki.Issued {
	t.Helper()
	c, err := ca.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refPKI mirrors the reference suite's main PKI (libevse-security-tests.md §1.1), made in Go.
type refPKI struct {
	V2GRoot, V2GRootNew, CPOSub1, CPOSub2, SECCLeaf *testpki.Issued // P1, P2, P3, P4, P5
	MORoot, MOSub1, MOSub2                          *testpki.Issued // P7, P8, P9
	InstRoot1, InstRoot2, InstRoot3                 *testpki.Issued // P12, P13, P14 (one DN)
	InstSub1, InstSub2                              *testpki.Issued // P15, P16
}

func newRefPKI(t testing.TB) *refPKI {
	t.Helper()
	p := &refPKI{}
	p.V2GRoot = mustRoot(t, caSpec("V2GRootCA"))
	p.V2GRootNew = mustRoot(t, caSpec("V2GRootCA"))
	s1 := caSpec("CPOSubCA1")
	s1.MaxPathLen = 1
	p.CPOSub1 = mustIssue(t, p.V2GRoot, s1)
	s2 := caSpec("CPOSubCA2")
	s2.MaxPathLen = 0
	p.CPOSub2 = mustIssue(t, p.CPOSub1, s2)
	p.SECCLeaf = mustIssue(t, p.CPOSub2, leafSpec("SECCCert"))
	mo := caSpec("MORootCA")
	mo.DomainComponent = "MO"
	p.MORoot = mustRoot(t, mo)
	mo.CommonName = "MOSubCA1"
	p.MOSub1 = mustIssue(t, p.MORoot, mo)
	mo.CommonName = "MOSubCA2"
	p.MOSub2 = mustIssue(t, p.MOSub1, mo)
	p.InstRoot1 = mustRoot(t, caSpec("InstallTestCA"))
	p.InstRoot2 = mustRoot(t, caSpec("InstallTestCA"))
	p.InstRoot3 = mustRoot(t, caSpec("InstallTestCA"))
	p.InstSub1 = mustIssue(t, p.InstRoot3, caSpec("InstallTestSubCA1"))
	p.InstSub2 = mustIssue(t, p.InstSub1, caSpec("InstallTestSubCA2"))
	return p
}

// writeRefTree writes the reference suite's starting tree (§2.3) into ts, whose config must be
// sharedBundleConfig: the V2G bundle holds sub-CA 2, sub-CA 1 and the root (in that order), the MO
// bundle likewise, the SECC directory the leaf and its chain file.
func (p *refPKI) writeRefTree(t testing.TB, ts *caTestStore) {
	t.Helper()
	ts.write(t, "ca/v2g/V2G_CA_BUNDLE.pem", testpki.CertsPEM(p.CPOSub2, p.CPOSub1, p.V2GRoot))
	ts.write(t, "ca/mo/MO_CA_BUNDLE.pem", testpki.CertsPEM(p.MOSub2, p.MOSub1, p.MORoot))
	ts.write(t, "client/cso/SECC_LEAF.pem", p.SECCLeaf.CertPEM())
	ts.write(t, "client/cso/CPO_CERT_CHAIN.pem", testpki.CertsPEM(p.SECCLeaf, p.CPOSub2, p.CPOSub1))
}

// tampered returns a copy of c whose signature no longer verifies (one bit of the signature's
// last byte flipped; the DER stays well-formed).
func tampered(t testing.TB, c *x509.Certificate) *x509.Certificate {
	t.Helper()
	der := bytes.Clone(c.Raw)
	der[len(der)-1] ^= 0x01
	out, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tampered certificate does not parse: %v", err)
	}
	if out.CheckSignatureFrom(c) == nil {
		t.Fatal("tampered certificate still verifies")
	}
	return out
}

// ---- the tree on disk ---------------------------------------------------------------------

// fileState is one entry of a snapshot: bytes and mode of a file, target of a symlink.
type fileState = testtool.Entry

// snapshotTree records every file, directory and symlink under root (path, bytes, mode).
func snapshotTree(t testing.TB, root string) map[string]fileState {
	t.Helper()
	return testtool.Snapshot(t, root)
}

// diffTrees describes how two snapshots differ, "" when they are equal.
func diffTrees(before, after map[string]fileState) string {
	var lines []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			lines = append(lines, "removed "+p)
		case a != b:
			lines = append(lines, fmt.Sprintf("changed %s (mode %v→%v, %d→%d bytes, link %q→%q)", p, b.Mode, a.Mode, len(b.Data), len(a.Data), b.Link, a.Link))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			lines = append(lines, "added "+p)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// assertTreeUnchanged fails when the tree under root differs from before.
func assertTreeUnchanged(t testing.TB, root string, before map[string]fileState) {
	t.Helper()
	if d := diffTrees(before, snapshotTree(t, root)); d != "" {
		t.Errorf("the store tree changed:\n%s", d)
	}
}

// certsInFile parses a PEM file of the tree.
func certsInFile(t testing.TB, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := certs.ParseCertificates(data)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	return cs
}

// containsCert reports whether cs holds c (same DER).
func containsCert(cs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range cs {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// ---- filesystem wrappers ------------------------------------------------------------------

// faultFS is the OS filesystem with chosen operations failing.
type faultFS struct {
	OSFS
	// failCreate, failSymlink and failRename make these operations fail with err when they
	// return true for the directory (CreateTemp), the new name (Symlink) or the target (Rename).
	failCreate  func(dir string) bool
	failSymlink func(newname string) bool
	failRename  func(newpath string) bool
	err         error
}

func (f *faultFS) fail() error {
	if f.err != nil {
		return f.err
	}
	return syscall.EROFS
}

func (f *faultFS) CreateTemp(dir, pattern string) (File, error) {
	if f.failCreate != nil && f.failCreate(dir) {
		return nil, &fs.PathError{Op: "createtemp", Path: dir, Err: f.fail()}
	}
	return f.OSFS.CreateTemp(dir, pattern)
}

func (f *faultFS) Symlink(oldname, newname string) error {
	if f.failSymlink != nil && f.failSymlink(newname) {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: f.fail()}
	}
	return f.OSFS.Symlink(oldname, newname)
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if f.failRename != nil && f.failRename(newpath) {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: f.fail()}
	}
	return f.OSFS.Rename(oldpath, newpath)
}

// under returns a predicate matching dir and everything below it.
func under(dir string) func(string) bool {
	return func(p string) bool {
		return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
	}
}

// ---- OpenSSL ------------------------------------------------------------------------------

// runOpenSSL runs the openssl CLI in dir and returns stdout; a failure fails the test.
func runOpenSSL(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := tryOpenSSL(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func tryOpenSSL(t testing.TB, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(requireTool(t, "openssl"), args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

var opensslVerifyError = regexp.MustCompile(`error (\d+) at (\d+) depth`)

// opensslVerify runs `openssl verify ARGS...` and returns 0 when it accepts, else the first
// X509_V_ERR code it reports (-1 when it failed without one), with its output.
func opensslVerify(t testing.TB, dir string, args ...string) (int, string) {
	t.Helper()
	out, errOut, err := tryOpenSSL(t, dir, append([]string{"verify"}, args...)...)
	if err == nil {
		return 0, out
	}
	if m := opensslVerifyError.FindStringSubmatch(errOut + out); m != nil {
		code, _ := strconv.Atoi(m[1])
		return code, errOut + out
	}
	return -1, errOut + out
}

// validationOfOpenSSL maps an OpenSSL verify error code onto verify_certificate's result, as the
// reference does (libevse-security-behaviour.md §7.5), with the time errors (9 not yet valid, 10
// expired) both Expired: evsesec checks every certificate's validity (DESIGN.md §3 row 9).
func validationOfOpenSSL(code int) ValidationResult {
	switch code {
	case 0:
		return ValidationValid
	case 9, 10:
		return ValidationExpired
	case 7:
		return ValidationInvalidSignature
	case 2, 20:
		return ValidationIssuerNotFound
	case 21:
		return ValidationInvalidLeafSignature
	case 22, 27:
		return ValidationInvalidChain
	}
	return ValidationUnknown
}

// osslPKI makes certificates with the openssl CLI in a temporary directory. Keys are P-256.
type osslPKI struct {
	t   testing.TB
	dir string
	n   int
}

// osslCert is a certificate made by osslPKI.
type osslCert struct {
	Name, CertPath, KeyPath, CSRPath string
	Cert                             *x509.Certificate
	PEM                              string
}

// osslOpts describe a certificate to make.
type osslOpts struct {
	CA bool
	// Days is the validity from now (default 365). Start and End ("YYYYMMDDHHMMSSZ") make the
	// certificate with `openssl ca -startdate -enddate` instead, for expired and future ones.
	Days       int
	Start, End string
	// NoKeyID leaves out the subject and authority key identifiers, so issuers can only be told
	// apart by signature.
	NoKeyID bool
	// PathLen0 makes a CA with pathlen:0.
	PathLen0 bool
	// Key reuses the key of another certificate (cross-signing, re-issuing).
	Key *osslCert
}

const osslCAConf = `[ca]
default_ca = CA_default
[CA_default]
dir = .
database = db/index.txt
new_certs_dir = db
serial = db/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
preserve = yes
email_in_dn = no
[policy_any]
commonName = supplied
organizationName = optional
countryName = optional
domainComponent = optional
[ext_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ext_ca_nokid]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = none
authorityKeyIdentifier = none
[ext_ca_pl0]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ext_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ext_leaf_nokid]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
subjectKeyIdentifier = none
authorityKeyIdentifier = none
`

func newOSSLPKI(t testing.TB) *osslPKI {
	t.Helper()
	requireTool(t, "openssl")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"ca.cnf": osslCAConf, "db/index.txt": "", "db/serial": "1000\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &osslPKI{t: t, dir: dir}
}

func (p *osslPKI) ext(o osslOpts) string {
	name := "ext_leaf"
	if o.CA {
		name = "ext_ca"
	}
	if o.NoKeyID {
		name += "_nokid"
	} else if o.CA && o.PathLen0 {
		name += "_pl0"
	}
	return name
}

// root makes a self-signed certificate with the given subject ("/CN=.../O=...").
func (p *osslPKI) root(name, subject string, o osslOpts) *osslCert {
	return p.make(nil, name, subject, o)
}

// issue makes a certificate signed by ca.
func (p *osslPKI) issue(ca *osslCert, name, subject string, o osslOpts) *osslCert {
	return p.make(ca, name, subject, o)
}

func (p *osslPKI) make(ca *osslCert, name, subject string, o osslOpts) *osslCert {
	t := p.t
	t.Helper()
	p.n++
	c := &osslCert{Name: name, CertPath: filepath.Join(p.dir, name+".pem"), CSRPath: filepath.Join(p.dir, name+".csr")}
	if o.Key != nil {
		c.KeyPath = o.Key.KeyPath
		runOpenSSL(t, p.dir, "req", "-new", "-key", c.KeyPath, "-subj", subject, "-out", c.CSRPath)
	} else {
		c.KeyPath = filepath.Join(p.dir, name+".key")
		runOpenSSL(t, p.dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
			"-keyout", c.KeyPath, "-subj", subject, "-out", c.CSRPath)
	}
	days := o.Days
	if days == 0 {
		days = 365
	}
	switch {
	case o.Start != "" || o.End != "":
		args := []string{"ca", "-config", "ca.cnf", "-batch", "-notext", "-in", c.CSRPath, "-out", c.CertPath,
			"-startdate", o.Start, "-enddate", o.End, "-extensions", p.ext(o)}
		if ca == nil {
			args = append(args, "-selfsign", "-keyfile", c.KeyPath)
		} else {
			args = append(args, "-cert", ca.CertPath, "-keyfile", ca.KeyPath)
		}
		runOpenSSL(t, p.dir, args...)
	case ca == nil:
		runOpenSSL(t, p.dir, "x509", "-req", "-in", c.CSRPath, "-key", c.KeyPath, "-days", strconv.Itoa(days),
			"-set_serial", strconv.Itoa(5000+p.n), "-extfile", "ca.cnf", "-extensions", p.ext(o), "-out", c.CertPath)
	default:
		runOpenSSL(t, p.dir, "x509", "-req", "-in", c.CSRPath, "-CA", ca.CertPath, "-CAkey", ca.KeyPath,
			"-days", strconv.Itoa(days), "-set_serial", strconv.Itoa(5000+p.n), "-extfile", "ca.cnf",
			"-extensions", p.ext(o), "-out", c.CertPath)
	}
	data, err := os.ReadFile(c.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := certs.ParseCertificates(data)
	if err != nil || len(cs) != 1 {
		t.Fatalf("%s: %d certificates, %v", c.CertPath, len(cs), err)
	}
	c.Cert, c.PEM = cs[0], string(certs.EncodePEM(cs[0]))
	return c
}

// bundle writes the PEM of cs into a new file of the PKI directory and returns its path.
func (p *osslPKI) bundle(t testing.TB, name string, cs ...*osslCert) string {
	t.Helper()
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.PEM)
	}
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pemOf concatenates the PEM of osslCerts.
func pemOf(cs ...*osslCert) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.PEM)
	}
	return b.String()
}
