package store

import (
	"bytes"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// The helper process: when the test binary is started with EVSESEC_CA_HELPER set, this test opens
// the store at $EVSESEC_CA_HELPER_ROOT and installs every certificate of the PEM file
// $EVSESEC_CA_HELPER as V2G, one call each, after waiting for the file $EVSESEC_CA_HELPER_GO so
// that all helpers start together. Any result other than Accepted fails it.
func TestCAInstallHelperProcess(t *testing.T) {
	pemFile := os.Getenv("EVSESEC_CA_HELPER")
	if pemFile == "" {
		t.Skip("helper process for TestTwoProcessesInstallIntoOneFile")
	}
	data, err := os.ReadFile(pemFile)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := certs.ParsePEMBlocks(data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(DefaultConfig(os.Getenv("EVSESEC_CA_HELPER_ROOT")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(os.Getenv("EVSESEC_CA_HELPER_GO")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no start signal")
		}
	}
	for _, b := range blocks {
		if got := s.InstallCACertificate(string(data[b.Start:b.End]), CAV2G); got != InstallAccepted {
			t.Fatalf("install %s: %s", b.Cert.Subject.CommonName, got)
		}
	}
}

// distinctRoots makes n roots with distinct serials and names.
func distinctRoots(t testing.TB, prefix string, n int) []*testpki.Issued {
	t.Helper()
	out := make([]*testpki.Issued, n)
	for i := range out {
		out[i] = mustRoot(t, testpki.Spec{CommonName: fmt.Sprintf("%s %d", prefix, i), IsCA: true, MaxPathLen: -1, Serial: big.NewInt(int64(i + 1))})
	}
	return out
}

// Two OS processes installing different CAs into one bundle file at the same time lose neither:
// the inter-process lock serializes the read-modify-write of the file.
func TestTwoProcessesInstallIntoOneFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, per = 2, 20
	root := t.TempDir()
	work := t.TempDir()
	start := filepath.Join(work, "go")
	var all []*testpki.Issued
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < procs; i++ {
		roots := distinctRoots(t, fmt.Sprintf("Process %d Root", i), per)
		all = append(all, roots...)
		pemFile := filepath.Join(work, fmt.Sprintf("p%d.pem", i))
		if err := os.WriteFile(pemFile, testpki.CertsPEM(roots...), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCAInstallHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "EVSESEC_CA_HELPER="+pemFile, "EVSESEC_CA_HELPER_ROOT="+root, "EVSESEC_CA_HELPER_GO="+start)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	bundle := filepath.Join(root, "ca", "v2g", "V2G_ROOT_CA.pem")
	cs := certsInFile(t, bundle)
	if len(cs) != procs*per {
		t.Errorf("bundle holds %d certificates, want %d", len(cs), procs*per)
	}
	for _, r := range all {
		if !containsCert(cs, r.Cert) {
			t.Errorf("lost %s", r.Cert.Subject.CommonName)
		}
	}
	if _, err := os.Stat(bundle); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(bundle))
	if len(entries) != 1 {
		t.Errorf("bundle directory holds %d entries (temporary files left?)", len(entries))
	}
	ts := openCAStore(t, root)
	if n := len(ts.chains(V2GRootCertificate)); n != procs*per {
		t.Errorf("%d chains listed", n)
	}
}

// 16 goroutines install distinct CAs through two Store values on one root (in-process lock and
// file lock both in play) while readers query; nothing is lost, and for a directory bundle the
// hash links made meanwhile end up complete.
func TestGoroutinesInstallConcurrently(t *testing.T) {
	for _, dir := range []bool{false, true} {
		name := "file bundle"
		if dir {
			name = "directory bundle"
		}
		t.Run(name, func(t *testing.T) {
			const writers = 16
			root := t.TempDir()
			cfg := withConfig(func(c *Config) {
				if dir {
					c.V2GCABundle = "ca/v2g"
				}
			})
			stores := []*caTestStore{openCAStore(t, root, cfg), openCAStore(t, root, cfg)}
			rootCA := mustRoot(t, caSpec("Shared Root"))
			stores[0].installOK(t, CAV2G, rootCA)
			leaf := mustIssue(t, rootCA, leafSpec("Leaf"))
			roots := distinctRoots(t, "Concurrent Root", writers)
			subs := make([]*testpki.Issued, writers)
			for i := range subs {
				subs[i] = mustIssue(t, rootCA, testpki.Spec{CommonName: fmt.Sprintf("Concurrent Sub %d", i), IsCA: true, MaxPathLen: -1})
			}

			var wg sync.WaitGroup
			stop := make(chan struct{})
			errs := make(chan string, 4*writers)
			for i := 0; i < writers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					s := stores[i%2]
					for _, c := range []*testpki.Issued{roots[i], subs[i]} {
						if got := s.InstallCACertificate(string(c.CertPEM()), CAV2G); got != InstallAccepted {
							errs <- fmt.Sprintf("install %s: %s", c.Cert.Subject.CommonName, got)
						}
					}
				}(i)
			}
			var readers sync.WaitGroup
			for i := 0; i < 4; i++ {
				readers.Add(1)
				go func(i int) {
					defer readers.Done()
					s := stores[i%2]
					for {
						select {
						case <-stop:
							return
						default:
						}
						if got := s.VerifyCertificate(string(leaf.CertPEM()), []LeafType{LeafV2G}); got != ValidationValid {
							errs <- "verify during installs: " + string(got)
						}
						s.GetInstalledCertificates([]CertificateType{V2GRootCertificate})
						if i == 0 {
							s.GetVerifyLocation(CAV2G)
						} else if i == 1 {
							s.GetVerifyFile(CAV2G)
						}
					}
				}(i)
			}
			wg.Wait()
			close(stop)
			readers.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			ts := openCAStore(t, root, cfg)
			if n := ts.GetCountOfInstalledCertificates([]CertificateType{V2GRootCertificate}); n != 1+2*writers {
				t.Errorf("count %d, want %d", n, 1+2*writers)
			}
			chains := ts.chains(V2GRootCertificate)
			if len(chains) != 1+writers {
				t.Errorf("%d chains, want %d", len(chains), 1+writers)
			}
			if c := chainOf(chains, selfHash(t, rootCA)); c == nil || len(c.Children) != writers {
				t.Errorf("shared root's chain: %+v", c)
			}
			if dir {
				loc := ts.GetVerifyLocation(CAV2G)
				links := linksIn(t, loc)
				if len(links) != 1+2*writers {
					t.Errorf("%d links, want %d", len(links), 1+2*writers)
				}
				for name, target := range links {
					if _, err := os.Stat(filepath.Join(loc, target)); err != nil {
						t.Errorf("link %s: %v", name, err)
					}
				}
				if n := len(certsInFile(t, ts.GetVerifyFile(CAV2G))); n != 1+2*writers {
					t.Errorf("combined file holds %d", n)
				}
			}
		})
	}
}

// Installs and deletes racing on one store keep the bundle consistent with the calls that
// succeeded.
func TestInstallDeleteRace(t *testing.T) {
	ts := newCAStore(t)
	roots := distinctRoots(t, "Churn Root", 12)
	var wg sync.WaitGroup
	for i, r := range roots {
		wg.Add(1)
		go func(i int, r *testpki.Issued) {
			defer wg.Done()
			for k := 0; k < 3; k++ {
				if got := ts.InstallCACertificate(string(r.CertPEM()), CAV2G); got != InstallAccepted {
					t.Errorf("install: %s", got)
				}
				if i%2 == 0 {
					if got := ts.DeleteCertificate(selfHash(t, r)); got != DeleteAccepted {
						t.Errorf("delete: %s", got)
					}
				}
			}
		}(i, r)
	}
	wg.Wait()
	cs := certsInFile(t, ts.path("ca/v2g/V2G_ROOT_CA.pem"))
	if len(cs) != len(roots)/2 {
		t.Errorf("bundle holds %d certificates, want %d", len(cs), len(roots)/2)
	}
	for i, r := range roots {
		if containsCert(cs, r.Cert) != (i%2 == 1) {
			t.Errorf("root %d present = %v", i, !(i%2 == 1))
		}
	}
}
