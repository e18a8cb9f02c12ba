package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
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

// rssChildren is how many fresh processes one iteration of BenchmarkPeakRSS starts. A process's
// peak RSS depends on when its garbage collections happen to run, and varies by a few MiB from one
// run of the same code to the next; the median of several is the measurement.
const rssChildren = 3

// BenchmarkPeakRSS measures, in fresh processes, the cold open plus first leaf query and the peak
// RSS of a process that opens the store and runs every query once (medians over the processes).
func BenchmarkPeakRSS(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		var colds, rsss []float64
		for range b.N {
			for range rssChildren {
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
				colds, rsss = append(colds, c), append(rsss, float64(r))
			}
		}
		b.ReportMetric(median(colds), "cold-open-ms")
		b.ReportMetric(median(rsss)/1024, "peak-RSS-MiB")
	})
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
