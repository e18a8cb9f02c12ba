package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/store"
)

// rssEnv names the store a child process opens to measure the store's own peak RSS.
const rssEnv = "EVSESEC_BENCH_RSS_ROOT"

// TestPeakRSSChild is the child of BenchmarkPeakRSS: it opens the store, runs the queries a
// station makes, and prints its peak resident set and the time of the open and first query. It
// does nothing in a normal test run.
func TestPeakRSSChild(t *testing.T) {
	root := os.Getenv(rssEnv)
	if root == "" {
		t.Skip("child process of BenchmarkPeakRSS")
	}
	start := time.Now()
	s, err := store.Open(config(&Store{Root: root}), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, true); r.Status != store.InfoAccepted {
		t.Fatal(r.Status)
	}
	cold := time.Since(start)
	s.GetAllValidCertificatesInfo(store.LeafV2G, store.EncodingPEM, true)
	s.GetInstalledCertificates([]store.CertificateType{store.V2GRootCertificate, store.V2GCertificateChain})
	s.GetV2GOCSPRequestData()
	s.GarbageCollect()
	fmt.Printf("RESULT cold_ms=%.1f peak_rss_kib=%d\n", float64(cold.Microseconds())/1000, vmHWM())
}

// vmHWM reads the process's peak resident set size in KiB.
func vmHWM() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return -1
}

// BenchmarkPeakRSS measures, in a fresh process per iteration, the cold open plus first leaf
// query and the peak RSS of a process that opens the store and runs every query once.
func BenchmarkPeakRSS(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		var coldMS, rssKiB float64
		for range b.N {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSChild$", "-test.v")
			cmd.Env = append(os.Environ(), rssEnv+"="+st.Root)
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("child: %v\n%s", err, out)
			}
			var c float64
			var r int
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "RESULT ") {
					fmt.Sscanf(line, "RESULT cold_ms=%f peak_rss_kib=%d", &c, &r)
				}
			}
			coldMS += c
			rssKiB = max(rssKiB, float64(r))
		}
		b.ReportMetric(coldMS/float64(b.N), "cold-open-ms")
		b.ReportMetric(rssKiB/1024, "peak-RSS-MiB")
	})
}
