package everest_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// pkiTree is the standard test PKI written as an EVerest certificate tree.
type pkiTree struct {
	pki    *testpki.PKI
	layout *testpki.Layout
}

// writePKI writes the standard test PKI under certsRoot.
func writePKI(t testing.TB, certsRoot string) pkiTree {
	t.Helper()
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.WriteLayout(certsRoot, "")
	if err != nil {
		t.Fatal(err)
	}
	return pkiTree{pki: p, layout: l}
}

// module is a module runner in module mode, configured by a fake manager.
type module struct {
	runner  *everest.Runner
	manager *everesttest.Manager
	topics  everest.Topics
	tree    pkiTree
	prefix  string // the installation prefix (--prefix)
	store   *moduleStore
	cancel  context.CancelFunc
	done    chan error
}

// moduleOptions tune startModule.
type moduleOptions struct {
	// noManager starts the runner without a manager (the test starts one).
	noManager bool
	// managerEtcDir is published in the manager's settings.
	managerEtcDir string
	// installPrefix overrides the runner's prefix (default: the temp dir the PKI is under).
	installPrefix string
	configRetry   time.Duration
}

// startModule writes a PKI under <tmp>/etc/everest/certs and starts the runner in module mode
// with tmp as the installation prefix, as the manager would with --prefix tmp. It stops the
// runner when the test ends.
func startModule(t *testing.T, url string, o moduleOptions) *module {
	t.Helper()
	prefix := t.TempDir()
	m := &module{prefix: prefix, tree: writePKI(t, filepath.Join(prefix, "etc", "everest", "certs")), done: make(chan error, 1)}
	if o.installPrefix == "" {
		o.installPrefix = prefix
	}
	if o.configRetry == 0 {
		o.configRetry = time.Second
	}
	if !o.noManager {
		m.manager = everesttest.StartManager(t, everesttest.ManagerOptions{URL: url, EtcDir: o.managerEtcDir})
	}
	r := everest.NewRunner(everest.Options{
		Broker:            everest.Broker{URL: url},
		InstallPrefix:     o.installPrefix,
		Logger:            testLogger(),
		ConfigRetry:       o.configRetry,
		ReconnectInterval: 500 * time.Millisecond,
	})
	m.runner, m.topics, m.store = r, r.Topics(), &moduleStore{r: r}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- r.RunModule(ctx, m.store.open) }()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// moduleStore is the module's setup and what it leaves running, as the binary has them: the
// store the manager's config describes, its events published as certificate_store_update, and its
// maintenance loop until the runner stops. close waits for the loop and closes the store, as the
// binary does once RunModule has returned: the loop's first look at the leaves takes the store's
// lock file, so a loop still running when the test's temporary directory is removed creates a
// file in it ("directory not empty").
type moduleStore struct {
	r  *everest.Runner
	wg sync.WaitGroup
	mu sync.Mutex
	st *store.Store
}

// open is the runner's SetupFunc.
func (s *moduleStore) open(ctx context.Context, mc everest.ModuleConfig) (everest.Handler, error) {
	cfg, _ := api.StoreConfig(mc.Params, mc.EtcDir)
	st, err := store.Open(cfg, store.Options{OnEvent: storeEvents(s.r), Logger: testLogger()})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.wg.Go(func() { st.Maintain(ctx) })
	return api.NewDispatcher(st), nil
}

// close waits for the maintenance loop (it ends with the runner's context) and closes the store.
// Call it after RunModule has returned.
func (s *moduleStore) close() {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != nil {
		s.st.Close()
		s.st = nil
	}
}

// storeEvents publishes the store's events as certificate_store_update, as the binary does.
func storeEvents(r *everest.Runner) func(store.Event) {
	return func(e store.Event) {
		if u, ok := api.StoreUpdateFor(e); ok {
			_ = r.PublishVar(everest.StoreUpdateVar, u)
		}
	}
}

// stop cancels the runner, waits for it, then for its store's maintenance loop, and closes the
// store.
func (m *module) stop(t testing.TB) {
	m.cancel()
	select {
	case err, ok := <-m.done:
		if ok && err != nil {
			t.Errorf("RunModule: %v", err)
		}
		if ok {
			close(m.done)
		}
		m.store.close()
	case <-time.After(15 * time.Second):
		t.Error("RunModule did not return after cancel")
	}
}

// waitReady waits for the runner's ready.
func (m *module) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-m.runner.Ready():
	case err := <-m.done:
		t.Fatalf("RunModule returned before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("module not ready")
	}
}

// pemOf returns the PEM of certificates.
func pemOf(cs ...*x509.Certificate) string {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return string(out)
}

// signCSR issues a leaf for a CSR with ca, the way a CSMS answers SignCertificate.
func signCSR(t testing.TB, csrPEM string, ca *testpki.Issued, eku x509.ExtKeyUsage) string {
	t.Helper()
	b, _ := pem.Decode([]byte(csrPEM))
	if b == nil {
		t.Fatalf("CSR is not PEM: %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{ExtraNames: csr.Subject.Names},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:  []x509.ExtKeyUsage{eku},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// raw marshals v.
func raw(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
