package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/store"
)

// sizes are the store sizes every benchmark runs on (SECC leaves).
var sizes = []int{10, 200, 2000}

var (
	genMu   sync.Mutex
	genDir  string
	stores  = map[int]*Store{}
	genTime = time.Now().UTC().Truncate(time.Second)
)

func TestMain(m *testing.M) {
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

// generated returns the store of size n, generating it on first use. Its files and directories
// are dated a minute back, as on a station whose store has not just been written.
func generated(b *testing.B, n int) *Store {
	b.Helper()
	genMu.Lock()
	defer genMu.Unlock()
	if st, ok := stores[n]; ok {
		return st
	}
	if genDir == "" {
		d, err := os.MkdirTemp("", "evsesec-bench-")
		if err != nil {
			b.Fatal(err)
		}
		genDir = d
	}
	dir := filepath.Join(genDir, fmt.Sprintf("store-%d", n))
	st, err := Generate(dir, n, genTime)
	if err != nil {
		b.Fatal(err)
	}
	if err := ageTree(dir, time.Minute); err != nil {
		b.Fatal(err)
	}
	stores[n] = st
	return st
}

// ageTree dates every file and directory d back.
func ageTree(root string, d time.Duration) error {
	old := time.Now().Add(-d)
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
}

// config is the default layout of st, with limits that let the largest store grow.
func config(st *Store) store.Config {
	cfg := store.DefaultConfig(st.Root)
	cfg.MaxStoreEntries = 1 << 20
	cfg.MaxStoreBytes = 1 << 40
	return cfg
}

func open(b *testing.B, st *Store) *store.Store {
	b.Helper()
	s, err := store.Open(config(st), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func forSizes(b *testing.B, f func(b *testing.B, st *Store)) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("leaves=%d", n), func(b *testing.B) { f(b, generated(b, n)) })
	}
}

// BenchmarkGetLeafCertificateInfoWarm is the call a TLS handshake makes, on a store already open.
func BenchmarkGetLeafCertificateInfoWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		if r := s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); r.Status != store.InfoAccepted {
			b.Fatalf("status %s", r.Status)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
		}
	})
}

// BenchmarkGetLeafCertificateInfoCold opens the store and makes the first call.
func BenchmarkGetLeafCertificateInfoCold(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		b.ReportAllocs()
		for range b.N {
			s, err := store.Open(config(st), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if r := s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); r.Status != store.InfoAccepted {
				b.Fatalf("status %s", r.Status)
			}
			s.Close()
		}
	})
}

// BenchmarkFloor is the least a leaf lookup can cost: one map lookup and one os.Stat of the
// returned file.
func BenchmarkFloor(b *testing.B) {
	st := generated(b, 10)
	s := open(b, st)
	r := s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
	m := map[store.LeafType]string{store.LeafV2G: r.Info.Certificate}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := os.Stat(m[store.LeafV2G]); err != nil {
			b.Fatal(err)
		}
	}
}

// mutableCopy copies a generated store for benchmarks that write.
func mutableCopy(b *testing.B, st *Store) *Store {
	b.Helper()
	dir := b.TempDir()
	if err := copyTree(st.Root, dir); err != nil {
		b.Fatal(err)
	}
	if err := ageTree(dir, time.Minute); err != nil {
		b.Fatal(err)
	}
	c := *st
	c.Root = dir
	return &c
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, fi.Mode().Perm())
	})
}
