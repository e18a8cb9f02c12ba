package metrics_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/metrics"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// fixture is a store in the EVerest layout whose CSMS leaf directory holds three leaves instead
// of the layout's one: one that expires in 10 days (the one in use), one that expired 10 days
// ago and one that starts in 20 days. Its metrics and the instrumented dispatcher go with it.
type fixture struct {
	t                     *testing.T
	root                  string
	pki                   *testpki.PKI
	soon, expired, future *testpki.Issued
	st                    *store.Store
	m                     *metrics.Metrics
	h                     metrics.Handler
}

func newFixture(t *testing.T, now time.Time, clock func() time.Time, edit func(*store.Config)) *fixture {
	t.Helper()
	p, err := testpki.Generate(testpki.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "certs")
	l, err := p.WriteLayout(root, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{l.CSMSLeafCert, l.CSMSLeafKey} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{t: t, root: root, pki: p}
	day := 24 * time.Hour
	f.soon = f.csmsLeaf("CSMS_SOON", now.Add(-30*day), now.Add(10*day))
	f.expired = f.csmsLeaf("CSMS_OLD", now.Add(-400*day), now.Add(-10*day))
	f.future = f.csmsLeaf("CSMS_NEXT", now.Add(20*day), now.Add(800*day))

	cfg := store.DefaultConfig(root)
	if edit != nil {
		edit(&cfg)
	}
	f.st, err = store.Open(cfg, store.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.m = metrics.New()
	f.m.WatchStore(f.st)
	f.h = f.m.Instrument(api.NewDispatcher(f.st))
	return f
}

// csmsLeaf issues a CSMS leaf under the CSMS root and writes it with its key into client/csms.
func (f *fixture) csmsLeaf(name string, notBefore, notAfter time.Time) *testpki.Issued {
	f.t.Helper()
	leaf, err := f.pki.CSMSRoot.Issue(testpki.Spec{CommonName: name, Organization: testpki.Organization, Country: testpki.Country,
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		f.t.Fatal(err)
	}
	key, err := leaf.KeyPEM("")
	if err != nil {
		f.t.Fatal(err)
	}
	dir := filepath.Join(f.root, "client", "csms")
	for file, data := range map[string][]byte{name + ".pem": leaf.CertPEM(), name + ".key": key} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			f.t.Fatal(err)
		}
	}
	return leaf
}

// call runs a command through the instrumented dispatcher and returns its JSON result.
func (f *fixture) call(name string, args any) (string, error) {
	f.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := f.h.Call(context.Background(), name, raw)
	return string(res), err
}

// scrape serves the registry once over its HTTP handler and parses the text exposition.
func (f *fixture) scrape() scraped {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.m.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		f.t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body.String())
	}
	return parseText(f.t, rec.Body.String())
}

// scraped is a parsed scrape, by family name.
type scraped map[string]*dto.MetricFamily

func parseText(t *testing.T, text string) scraped {
	t.Helper()
	if !strings.Contains(text, "# TYPE evsesec_") {
		t.Fatalf("not a text exposition of evsesec:\n%.500s", text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value returns the value of the one series of family name whose labels include want; ok is
// false when there is none. More than one match fails the test.
func (s scraped) value(t *testing.T, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fam, ok := s[name]
	if !ok {
		return 0, false
	}
	var found []*dto.Metric
	for _, m := range fam.Metric {
		if hasLabels(m, want) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return 0, false
	case 1:
	default:
		t.Fatalf("%s%v: %d series match", name, want, len(found))
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	t.Fatalf("%s: unexpected metric type", name)
	return 0, false
}

// must is value that fails the test when the series is missing.
func (s scraped) must(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := s.value(t, name, want)
	if !ok {
		t.Fatalf("no series %s%v in the scrape", name, want)
	}
	return v
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.Label {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func fingerprint(i *testpki.Issued) string {
	sum := sha256.Sum256(i.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// storeFiles counts the regular files and bytes under the CA and leaf directories of the
// layout: what the store must report against its limits (pki/ is not part of the store).
func storeFiles(t *testing.T, root string) (entries int, size int64) {
	t.Helper()
	for _, top := range []string{"ca", "client"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			entries++
			size += fi.Size()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return entries, size
}
