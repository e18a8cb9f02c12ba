package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

var metricsURL = regexp.MustCompile(`metrics endpoint listening"[^\n]* url=(http://127\.0\.0\.1:\d+/metrics)`)

// scrapeURL GETs the endpoint and parses the text exposition.
func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := tryScrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func tryScrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the scrape does not parse: %w", err)
	}
	return fams, nil
}

// series returns the gauge or counter value of the one series of name with labels want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	fam := fams[name]
	if fam == nil {
		t.Fatalf("family %s missing", name)
	}
	var out []float64
	for _, m := range fam.Metric {
		match := 0
		for _, lp := range m.Label {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		switch {
		case m.Gauge != nil:
			out = append(out, m.Gauge.GetValue())
		case m.Counter != nil:
			out = append(out, m.Counter.GetValue())
		case m.Histogram != nil:
			out = append(out, float64(m.Histogram.GetSampleCount()))
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s%v: %d series", name, want, len(out))
	}
	return out[0]
}

// `evsesec serve --metrics 127.0.0.1:0`, scraped over HTTP: every family, the values of a store
// with a CSMS leaf expiring in 10 days, an expired and a future one, and series that follow an
// install, a delete, a GC and a failed command made over MQTT.
func TestServeMetrics(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root := filepath.Join(t.TempDir(), "certs")
	p, l := writePKI(t, root, testpki.Options{})
	removeFiles(t, l.CSMSLeafCert, l.CSMSLeafKey)
	day := 24 * time.Hour
	now := time.Now()
	leaves := map[string]*testpki.Issued{}
	for name, v := range map[string][2]time.Time{
		"CSMS_SOON": {now.Add(-30 * day), now.Add(10 * day)},
		"CSMS_OLD":  {now.Add(-400 * day), now.Add(-10 * day)},
		"CSMS_NEXT": {now.Add(20 * day), now.Add(800 * day)},
	} {
		leaf, err := p.CSMSRoot.Issue(testpki.Spec{CommonName: name, Organization: testpki.Organization, Country: testpki.Country,
			NotBefore: v[0], NotAfter: v[1], ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			t.Fatal(err)
		}
		key, _ := leaf.KeyPEM("")
		for file, data := range map[string][]byte{name + ".pem": leaf.CertPEM(), name + ".key": key} {
			if err := os.WriteFile(filepath.Join(root, "client", "csms", file), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		leaves[name] = leaf
	}

	// A cached OCSP response of the SECC leaf, so the OCSP families are there too.
	st, err := store.Open(store.DefaultConfig(root), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seccHash, err := certs.ComputeHashData(p.SECCLeaf.Cert, p.CPOSubCA2.Cert, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	thisUpdate := now.Add(-time.Hour).Truncate(time.Second)
	if err := st.UpdateOCSPCache(seccHash, testtool.OCSPResponse(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, p.CPOSubCA2.Key, false, thisUpdate, now.Add(day))); err != nil {
		t.Fatal(err)
	}
	st.Close()

	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	srv := serveInProcess("--certs", root, "--socket", sock, "--metrics", "127.0.0.1:0")
	defer srv.stop(t)
	logs := srv.log
	broker := "unix://" + sock
	waitAnswering(t, broker, logs.String)
	m := metricsURL.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics endpoint in the log:\n%s", logs.String())
	}
	url := m[1]
	call := func(cmd string, args any) (string, int) {
		t.Helper()
		raw, _ := json.Marshal(args)
		out, _, code := runCLI("call", "--broker", broker, cmd, string(raw))
		return strings.TrimSpace(out), code
	}
	if _, code := call("install_ca_certificate", map[string]any{"certificate_type": "XX", "certificate": "x"}); code == 0 {
		t.Fatal("a bad certificate_type was accepted")
	}

	before := time.Now()
	s := scrapeURL(t, url)
	after := time.Now()
	for _, name := range []string{
		"evsesec_certificate_expiry_seconds", "evsesec_certificate_not_after_timestamp_seconds", "evsesec_certificate_state",
		"evsesec_leaf_usable", "evsesec_leaf_needed", "evsesec_leaf_expiry_seconds", "evsesec_leaf_chain_expiry_seconds",
		"evsesec_ocsp_response_age_seconds", "evsesec_ocsp_response_next_update_seconds", "evsesec_ocsp_response_good",
		"evsesec_store_certificates", "evsesec_store_files", "evsesec_store_trust_anchors", "evsesec_store_bytes",
		"evsesec_store_bytes_limit", "evsesec_store_entries", "evsesec_store_entries_limit", "evsesec_csr_pending_keys",
		"evsesec_gc_runs_total", "evsesec_gc_removed_total", "evsesec_expiry_threshold_seconds",
		"evsesec_commands_total", "evsesec_command_duration_seconds", "evsesec_command_errors_total",
		"evsesec_broker_connected", "evsesec_broker_reconnects_total",
	} {
		if s[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	for name, state := range map[string]string{"CSMS_SOON": "in_use", "CSMS_OLD": "expired", "CSMS_NEXT": "not_yet_valid"} {
		leaf := leaves[name]
		sum := sha256.Sum256(leaf.Cert.Raw)
		fp := map[string]string{"fingerprint": hex.EncodeToString(sum[:]), "kind": "leaf"}
		// The service read its clock between before and after.
		got := series(t, s, "evsesec_certificate_expiry_seconds", fp)
		if hi, lo := leaf.Cert.NotAfter.Sub(before).Seconds(), leaf.Cert.NotAfter.Sub(after).Seconds(); got > hi || got < lo {
			t.Errorf("%s: expiry %v s, want between %v and %v", name, got, lo, hi)
		}
		if got := series(t, s, "evsesec_certificate_state", map[string]string{"fingerprint": fp["fingerprint"], "state": state}); got != 1 {
			t.Errorf("%s: state %s = %v", name, state, got)
		}
	}
	seccSum := sha256.Sum256(p.SECCLeaf.Cert.Raw)
	secc := map[string]string{"fingerprint": hex.EncodeToString(seccSum[:])}
	if got := series(t, s, "evsesec_ocsp_response_age_seconds", secc); got < before.Sub(thisUpdate).Seconds() || got > after.Sub(thisUpdate).Seconds() {
		t.Errorf("OCSP age %v s, want between %v and %v", got, before.Sub(thisUpdate).Seconds(), after.Sub(thisUpdate).Seconds())
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"evsesec_ocsp_response_good", secc, 1},
		{"evsesec_leaf_usable", map[string]string{"leaf_type": "CSMS"}, 1},
		{"evsesec_store_certificates", map[string]string{"domain": "CSMS", "kind": "leaf"}, 3},
		{"evsesec_store_certificates", map[string]string{"domain": "MO", "kind": "ca"}, 1},
		{"evsesec_broker_connected", nil, 1},
		{"evsesec_broker_reconnects_total", nil, 0},
		{"evsesec_gc_runs_total", nil, 0},
		{"evsesec_command_errors_total", map[string]string{"command": "install_ca_certificate", "type": "invalid_arguments"}, 1},
	} {
		if got := series(t, s, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := series(t, s, "evsesec_commands_total", map[string]string{"command": "is_ca_certificate_installed", "result": "true"}); got < 1 {
		t.Errorf("is_ca_certificate_installed true answers counted: %v", got)
	}

	if out, code := call("install_ca_certificate", map[string]any{"certificate": string(p.MOSubCA1.CertPEM()), "certificate_type": "MO"}); code != 0 || out != `"Accepted"` {
		t.Fatalf("install: %s %d", out, code)
	}
	s = scrapeURL(t, url)
	if got := series(t, s, "evsesec_store_certificates", map[string]string{"domain": "MO", "kind": "ca"}); got != 2 {
		t.Errorf("MO certificates after the install: %v", got)
	}
	if got := series(t, s, "evsesec_commands_total", map[string]string{"command": "install_ca_certificate", "result": "Accepted"}); got != 1 {
		t.Errorf("install_ca_certificate Accepted: %v", got)
	}
	h, err := certs.ComputeHashData(p.MOSubCA1.Cert, p.MORoot.Cert, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := call("delete_certificate", map[string]any{"certificate_hash_data": h}); code != 0 || out != `"Accepted"` {
		t.Fatalf("delete: %s %d", out, code)
	}
	if out, code := call("garbage_collect", map[string]any{}); code != 0 {
		t.Fatalf("garbage_collect: %s %d", out, code)
	}
	s = scrapeURL(t, url)
	if got := series(t, s, "evsesec_store_certificates", map[string]string{"domain": "MO", "kind": "ca"}); got != 1 {
		t.Errorf("MO certificates after the delete: %v", got)
	}
	if got := series(t, s, "evsesec_gc_runs_total", nil); got != 1 {
		t.Errorf("GC runs after garbage_collect: %v", got)
	}
	if got := series(t, s, "evsesec_commands_total", map[string]string{"command": "delete_certificate", "result": "Accepted"}); got != 1 {
		t.Errorf("delete_certificate Accepted: %v", got)
	}
}

// --metrics refuses an address other hosts can reach unless --metrics-allow-remote.
func TestServeMetricsLoopbackOnly(t *testing.T) {
	root, _ := servePKI(t)
	for _, addr := range []string{":9464", "0.0.0.0:9464", "192.0.2.1:9464"} {
		_, errOut, code := runCLI("serve", "--certs", root, "--metrics", addr)
		if code != 2 || !strings.Contains(errOut, "not a loopback address") {
			t.Errorf("--metrics %s: exit %d, %q", addr, code, errOut)
		}
	}
}
