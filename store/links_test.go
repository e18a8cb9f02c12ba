package store_test

// update_certificate_links: optional symlinks to the current SECC leaf, its key and its chain,
// replaced atomically on every change and removed when there is no valid leaf.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evsesec/evsesec/store"
)

func newLinkEnv(t *testing.T) *env {
	return newEnv(t, envOptions{config: func(cfg *store.Config) {
		cfg.SECCLeafCertLink = "links/secc_leaf.pem"
		cfg.SECCLeafKeyLink = "links/secc_leaf.key"
		cfg.CPOCertChainLink = "links/cpo_chain.pem"
	}})
}

// requireLinks fails unless the three links point at cert, key and chain ("" = no link).
func requireLinks(t *testing.T, e *env, cert, key, chain string) {
	t.Helper()
	for _, l := range []struct{ link, want string }{
		{"links/secc_leaf.pem", cert}, {"links/secc_leaf.key", key}, {"links/cpo_chain.pem", chain},
	} {
		got, err := os.Readlink(e.path(l.link))
		switch {
		case l.want == "" && !os.IsNotExist(err):
			t.Fatalf("%s: %q, %v; want no link", l.link, got, err)
		case l.want != "" && (err != nil || got != l.want):
			t.Fatalf("%s → %q (%v), want → %s", l.link, got, err, l.want)
		}
	}
	// Nothing else in the link directory: no temporary links left behind.
	entries, _ := os.ReadDir(e.path("links"))
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	want := 0
	for _, w := range []string{cert, key, chain} {
		if w != "" {
			want++
		}
	}
	if len(names) != want {
		t.Fatalf("link directory holds %v", names)
	}
}

func TestCertificateLinksFollowTheCurrentLeaf(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	start := e.clock.Now()
	l := e.layout
	if !e.s.UpdateCertificateLinks() {
		t.Fatal("first update_certificate_links reported no change")
	}
	requireLinks(t, e, l.SECCLeafCert, l.SECCLeafKey, l.SECCChain)
	if got := readFile(t, e.path("links/secc_leaf.key")); string(got) != string(readFile(t, l.SECCLeafKey)) {
		t.Fatal("the key link does not read as the key")
	}
	var changed bool
	if err := e.call("update_certificate_links", nil, &changed); err != nil || changed {
		t.Fatalf("second update: %v, %v; want false", changed, err)
	}

	// A newer leaf moves the links on install.
	leaf := e.issueSECC("Newer", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	keyPath := e.path("client/cso/newer.key")
	writeKeyFile(t, keyPath, leaf.Key, "")
	before := snapshot(t, e.root)
	if got := e.s.UpdateLeafCertificate(pemOf(leaf.Cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("install: %s", got)
	}
	added := newFiles(t, e.root, before)
	if len(added) != 2 {
		t.Fatalf("added %v", added)
	}
	requireLinks(t, e, e.path(added[1]), keyPath, e.path(added[0]))

	// Deleting it moves them back.
	if got := e.s.DeleteCertificate(hashOf(t, leaf.Cert, e.pki.CPOSubCA2.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete: %s", got)
	}
	requireLinks(t, e, l.SECCLeafCert, l.SECCLeafKey, l.SECCChain)

	// No valid leaf: the links go.
	e.clock.Set(start.AddDate(2, 0, 1))
	if !e.s.UpdateCertificateLinks() {
		t.Fatal("removing the links reported no change")
	}
	requireLinks(t, e, "", "", "")
	if e.s.UpdateCertificateLinks() {
		t.Fatal("nothing to remove, but a change was reported")
	}
}

// A regular file at a link path is not the store's: it stays as it is.
func TestCertificateLinksLeaveRegularFilesAlone(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	writeFile(t, e.path("links/secc_leaf.key"), []byte("operator's file\n"), 0o600)
	if !e.s.UpdateCertificateLinks() {
		t.Fatal("no change reported")
	}
	if got := string(readFile(t, e.path("links/secc_leaf.key"))); got != "operator's file\n" {
		t.Fatalf("regular file rewritten: %q", got)
	}
	for link, want := range map[string]string{"links/secc_leaf.pem": e.layout.SECCLeafCert, "links/cpo_chain.pem": e.layout.SECCChain} {
		if got, err := os.Readlink(e.path(link)); err != nil || got != want {
			t.Fatalf("%s → %q, %v", link, got, err)
		}
	}
	e.clock.Set(e.clock.Now().AddDate(3, 0, 0))
	e.s.UpdateCertificateLinks()
	if got := string(readFile(t, e.path("links/secc_leaf.key"))); got != "operator's file\n" {
		t.Fatalf("regular file removed or rewritten: %q", got)
	}

	// Without links configured nothing happens.
	plain := newEnv(t, envOptions{})
	before := snapshot(t, plain.root)
	if plain.s.UpdateCertificateLinks() {
		t.Fatal("change reported without configured links")
	}
	requireUnchanged(t, plain.root, before, "update_certificate_links without links")
}

// The links are replaced by renaming a new link over the old one: a reader never finds a link
// missing while leaves rotate.
func TestCertificateLinksNeverMissingDuringRotation(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	start := e.clock.Now()
	e.s.UpdateCertificateLinks()
	var stop atomic.Bool
	var misses atomic.Int64
	var wg sync.WaitGroup
	for _, link := range []string{"links/secc_leaf.pem", "links/secc_leaf.key", "links/cpo_chain.pem"} {
		wg.Add(1)
		go func(p string) {
			defer wg.Done()
			for !stop.Load() {
				if _, err := os.Stat(p); err != nil {
					misses.Add(1)
				}
			}
		}(e.path(link))
	}
	var keysSeen []string
	for i := 1; i <= 6; i++ {
		leaf := e.issueSECC("Rotation", start.Add(-time.Hour), start.AddDate(2, i, 0))
		keyPath := e.path("client/cso/rot" + string(rune('0'+i)) + ".key")
		writeKeyFile(t, keyPath, leaf.Key, "")
		if got := e.s.UpdateLeafCertificate(string(leaf.CertPEM()), store.LeafV2G); got != store.InstallAccepted {
			t.Fatalf("install %d: %s", i, got)
		}
		target, err := os.Readlink(e.path("links/secc_leaf.key"))
		if err != nil || target != keyPath {
			t.Fatalf("rotation %d: key link → %q, %v", i, target, err)
		}
		keysSeen = append(keysSeen, target)
	}
	stop.Store(true)
	wg.Wait()
	if n := misses.Load(); n != 0 {
		t.Fatalf("a link was missing %d times during rotation", n)
	}
	if len(slices.Compact(keysSeen)) != 6 {
		t.Fatalf("links did not move on every rotation: %v", keysSeen)
	}
}

// The links' main use: the fixed names EvseV2G opens (client/cso/SECC_LEAF.pem, SECC_LEAF.key,
// CPO_CERT_CHAIN.pem) kept pointing at the files of the current leaf, inside the leaf directory
// itself. The links must never be taken for the leaf's own files: they would end up pointing at
// themselves, and deleting the leaf would leave its real key behind.
func TestCertificateLinksInsideTheLeafDirectory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(cfg *store.Config) {
		cfg.SECCLeafCertLink = "client/cso/SECC_LEAF.pem"
		cfg.SECCLeafKeyLink = "client/cso/SECC_LEAF.key"
		cfg.CPOCertChainLink = "client/cso/CPO_CERT_CHAIN.pem"
	}})
	start := e.clock.Now()
	for _, f := range []string{e.layout.SECCLeafCert, e.layout.SECCLeafKey, e.layout.SECCChain} {
		removeFile(t, f)
	}
	install := func(cn string, notAfter time.Time) (single, chain, key string) {
		t.Helper()
		csrPEM, keyPath := e.generateCSR(store.LeafV2G, "DE", "EVerest test", cn)
		cert := signCSR(t, csrPEM, e.pki.CPOSubCA2, start.Add(-time.Minute), notAfter)
		if got := e.s.UpdateLeafCertificate(pemOf(cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert), store.LeafV2G); got != store.InstallAccepted {
			t.Fatalf("install %s: %s\n%s", cn, got, e.logs)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(keyPath), "SECC_LEAF_"), ".key")
		return e.path("client/cso/SECC_LEAF_" + id + ".pem"), e.path("client/cso/CPO_CERT_SECC_LEAF_CHAIN_" + id + ".pem"), keyPath
	}
	check := func(single, chain, key string) {
		t.Helper()
		for link, want := range map[string]string{"client/cso/SECC_LEAF.pem": single, "client/cso/SECC_LEAF.key": key, "client/cso/CPO_CERT_CHAIN.pem": chain} {
			if got, err := os.Readlink(e.path(link)); err != nil || got != want {
				t.Fatalf("%s → %q (%v), want → %s", link, got, err, want)
			}
			if _, err := os.Stat(e.path(link)); err != nil {
				t.Fatalf("%s does not resolve: %v", link, err)
			}
		}
		in := leafInfo(t, e, store.LeafV2G)
		if in.Key != key || in.CertificateSingle != single || in.Certificate != chain {
			t.Fatalf("info %+v, want the leaf's own files, not the links", *in)
		}
	}
	s1, c1, k1 := install("First", start.AddDate(2, 0, 0))
	check(s1, c1, k1)
	if e.s.UpdateCertificateLinks() {
		t.Fatal("links changed without a change of leaf")
	}
	check(s1, c1, k1)
	s2, c2, k2 := install("Second", start.AddDate(3, 0, 0))
	check(s2, c2, k2)
	if n := len(e.s.GetInstalledCertificates([]store.CertificateType{store.V2GCertificateChain}).Chains); n != 2 {
		t.Fatalf("%d V2G chains, want 2", n)
	}
	// Deleting the current leaf takes its real files and key, and moves the links back.
	if got := e.s.DeleteCertificate(hashOf(t, fileCerts(t, s2)[0], e.pki.CPOSubCA2.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete: %s", got)
	}
	for _, p := range []string{s2, c2, k2} {
		if fileExists(p) {
			t.Fatalf("%s survived the delete of its leaf", p)
		}
	}
	check(s1, c1, k1)
	// GC does not take the key link for an orphan key.
	e.clock.Advance(48 * time.Hour)
	e.s.GarbageCollect()
	e.clock.Advance(48 * time.Hour)
	if rep := e.s.GarbageCollect(); len(rep.ExpiredCSRKeys) != 0 {
		t.Fatalf("GC removed %v", rep.ExpiredCSRKeys)
	}
	e.clock.Set(start)
	check(s1, c1, k1)
}
