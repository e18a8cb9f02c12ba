package store_test

// Shared helpers of the leaf lifecycle tests (leaf_test.go, csr_test.go, gc_test.go,
// links_test.go, leafdelete_test.go). They use only the store's exported API, testpki for the
// PKI and the OpenSSL CLI as an oracle.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/evsesec/evsesec/internal/testtool"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// requireTool stops a test that needs an external program which is not installed. On CI
// (CI=true) a missing tool is a failure, because CI is supposed to install everything the tests
// use and a silent skip would hide lost coverage; on a developer machine it is a skip.
func requireTool(t testing.TB, name string) {
	t.Helper()
	testtool.Require(t, name)
}

// runOpenSSL runs the openssl CLI with args (stdin may be nil) and returns its stdout; a non-zero
// exit fails the test with stderr.
func runOpenSSL(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	out, err := tryOpenSSL(t, stdin, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// tryOpenSSL is runOpenSSL that returns the failure (with stderr) instead of failing.
func tryOpenSSL(t testing.TB, stdin []byte, args ...string) (string, error) {
	t.Helper()
	requireTool(t, "openssl")
	cmd := exec.Command("openssl", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String() + stderr.String(), nil
}

// testClock is the store's injected clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// eventLog records the store's events.
type eventLog struct {
	mu     sync.Mutex
	events []store.Event
}

func (l *eventLog) add(e store.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns the events recorded since the last take.
func (l *eventLog) take() []store.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testtool.SyncBuffer

// env is one store over a test PKI in the EVerest default layout, with a fake clock, an event
// recorder and a captured debug log.
type env struct {
	t      *testing.T
	root   string
	cfg    store.Config
	pki    *testpki.PKI
	layout *testpki.Layout
	clock  *testClock
	events *eventLog
	logs   *syncBuffer
	s      *store.Store
}

// envOptions tune newEnv.
type envOptions struct {
	password string              // key file password of the layout and the store
	noLayout bool                // an empty tree (no PKI written)
	config   func(*store.Config) // changes to the default config before Open
	// iso15118_20 and seccIDs add the ISO 15118-20 chain and per-EVSE leaves to the PKI.
	iso15118_20 bool
	seccIDs     []string
}

// start is the fixed start of every test clock: certificates of the PKI are valid from an hour
// before it.
func testStart() time.Time { return time.Now().UTC().Truncate(time.Second) }

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, root: t.TempDir(), clock: newTestClock(testStart()), events: &eventLog{}, logs: &syncBuffer{}}
	if !o.noLayout {
		p, err := testpki.Generate(testpki.Options{Now: e.clock.Now(), Password: o.password, ISO15118_20: o.iso15118_20, SeccIDs: o.seccIDs})
		if err != nil {
			t.Fatal(err)
		}
		l, err := p.WriteLayout(e.root, o.password)
		if err != nil {
			t.Fatal(err)
		}
		e.pki, e.layout = p, l
	}
	e.cfg = store.DefaultConfig(e.root)
	e.cfg.PrivateKeyPassword = o.password
	if o.config != nil {
		o.config(&e.cfg)
	}
	e.open()
	return e
}

// open (re)opens the store on the same tree: a restart of the service.
func (e *env) open() {
	e.t.Helper()
	s, err := store.Open(e.cfg, store.Options{
		Clock:   e.clock.Now,
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: e.events.add,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
}

// path is a path under the tree's root.
func (e *env) path(rel string) string { return filepath.Join(e.root, filepath.FromSlash(rel)) }

// call runs one command through the JSON dispatcher and decodes its result into out (if not nil).
// It returns the dispatcher's error (argument errors).
func (e *env) call(name string, args any, out any) error {
	e.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		e.t.Fatal(err)
	}
	if s, ok := args.(string); ok {
		raw = []byte(s)
	}
	res, err := api.NewDispatcher(e.s).Call(context.Background(), name, raw)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			e.t.Fatalf("%s: result %s: %v", name, res, err)
		}
	}
	return nil
}

// fileState is what a snapshot keeps of one tree entry.
type fileState = testtool.Entry

// snapshot records every entry under root: path, mode, content (or link target).
func snapshot(t testing.TB, root string) map[string]fileState {
	t.Helper()
	return testtool.Snapshot(t, root)
}

// treeDiff lists the paths added, removed and changed between two snapshots, sorted.
func treeDiff(before, after map[string]fileState) (added, removed, changed []string) {
	for p, a := range after {
		b, ok := before[p]
		switch {
		case !ok:
			added = append(added, p)
		case a != b:
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			removed = append(removed, p)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

// requireUnchanged fails when the tree differs from the snapshot.
func requireUnchanged(t testing.TB, root string, before map[string]fileState, what string) {
	t.Helper()
	added, removed, changed := treeDiff(before, snapshot(t, root))
	if len(added)+len(removed)+len(changed) > 0 {
		t.Fatalf("%s changed the store: added %v, removed %v, changed %v", what, added, removed, changed)
	}
}

// writeKeyFile writes a key as plain PKCS#8 (password "") or encrypted PKCS#8, mode 0600.
func writeKeyFile(t testing.TB, path string, key crypto.Signer, password string) {
	t.Helper()
	data, err := keys.MarshalPEM(key, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, data, 0o600)
}

func writeFile(t testing.TB, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileCerts parses every certificate of a file (PEM or DER).
func fileCerts(t testing.TB, path string) []*x509.Certificate {
	t.Helper()
	cs, err := certs.ParseCertificates(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cs
}

// pemOf concatenates the PEM of certificates.
func pemOf(cs ...*x509.Certificate) string { return string(certs.EncodePEM(cs...)) }

// hashOf is the SHA-256 OCPP hash data of c issued by issuer.
func hashOf(t testing.TB, c, issuer *x509.Certificate) certs.HashData {
	t.Helper()
	h, err := certs.ComputeHashData(c, issuer, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// seccSpec is an ISO 15118-2 SECC leaf profile with the given validity (zero: testpki defaults).
func seccSpec(cn string, notBefore, notAfter time.Time) testpki.Spec {
	return testpki.Spec{CommonName: cn, Organization: "EVerest test", Country: "DE", DomainComponent: "CPO",
		NotBefore: notBefore, NotAfter: notAfter}
}

// issueSECC issues a SECC leaf under the PKI's CPO Sub-CA 2 with a fresh P-256 key.
func (e *env) issueSECC(cn string, notBefore, notAfter time.Time) *testpki.Issued {
	e.t.Helper()
	leaf, err := e.pki.CPOSubCA2.Issue(seccSpec(cn, notBefore, notAfter))
	if err != nil {
		e.t.Fatal(err)
	}
	return leaf
}

// issueCSMS issues a CSMS leaf under the PKI's CSMS root with a fresh P-256 key.
func (e *env) issueCSMS(cn string, notBefore, notAfter time.Time) *testpki.Issued {
	e.t.Helper()
	leaf, err := e.pki.CSMSRoot.Issue(testpki.Spec{CommonName: cn, Organization: "EVerest test", Country: "DE",
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		e.t.Fatal(err)
	}
	return leaf
}

// placeLeaf writes a leaf's single file and key file by hand (as an integrator or an older
// EvseSecurity would have left them) into the directories of lt, and returns the two paths.
func (e *env) placeLeaf(lt store.LeafType, name string, leaf *testpki.Issued) (certPath, keyPath string) {
	e.t.Helper()
	dir := "client/cso"
	if lt == store.LeafCSMS {
		dir = "client/csms"
	}
	certPath = e.path(dir + "/" + name + ".pem")
	keyPath = e.path(dir + "/" + name + ".key")
	writeFile(e.t, certPath, leaf.CertPEM(), 0o644)
	writeKeyFile(e.t, keyPath, leaf.Key, e.cfg.PrivateKeyPassword)
	return certPath, keyPath
}

// signCSR signs a PEM CSR with ca in Go, copying the CSR's subject and requested extensions,
// as a CSMS would.
func signCSR(t testing.TB, csrPEM string, ca *testpki.Issued, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("not a PEM CSR: %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber:    serial.Add(serial, big.NewInt(1)),
		RawSubject:      csr.RawSubject,
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		SubjectKeyId:    skid(t, csr.PublicKey),
		AuthorityKeyId:  ca.Cert.SubjectKeyId,
		ExtraExtensions: csr.Extensions,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func skid(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:]
}

// parseCSR decodes a PEM CSR.
func parseCSR(t testing.TB, csrPEM string) *x509.CertificateRequest {
	t.Helper()
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil {
		t.Fatalf("no PEM in CSR %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// loadKey reads a key file with the keys package (as the store does) and returns its signer.
func loadKey(t testing.TB, path, password string) crypto.Signer {
	t.Helper()
	k, err := keys.ParsePEM(readFile(t, path), []byte(password))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}

// newFiles lists the paths added under root since before, relative and sorted.
func newFiles(t testing.TB, root string, before map[string]fileState) []string {
	t.Helper()
	added, _, _ := treeDiff(before, snapshot(t, root))
	return added
}

// requireMode fails unless path has exactly the permission bits want.
func requireMode(t testing.TB, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}

// isArgError reports whether err is the dispatcher's argument error.
func isArgError(err error) bool {
	var ae *api.ArgError
	return errors.As(err, &ae)
}

// requireNoSecretsLogged fails when the log holds a password or any key material.
func requireNoSecretsLogged(t testing.TB, logs string, password string, keyFiles ...string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "-----BEGIN") && strings.Contains(line, "PRIVATE KEY") {
			t.Fatalf("the log holds a PEM private key block: %s", line)
		}
	}
	if password != "" && strings.Contains(logs, password) {
		t.Fatalf("the log holds the key password %q", password)
	}
	for _, kf := range keyFiles {
		data, err := os.ReadFile(kf)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") && strings.Contains(logs, line) {
				t.Fatalf("the log holds a line of key file %s", kf)
			}
		}
	}
}

// fileExists reports whether path exists (a dangling symlink counts).
func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func removeFile(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func renameFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	return os.Rename(from, to)
}
