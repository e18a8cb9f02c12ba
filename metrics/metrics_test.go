package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/metrics"
	"github.com/evsesec/evsesec/store"
)

// families are every family evsesec exposes once a store is watched and a command has failed.
var families = []string{
	"evsesec_certificate_expiry_seconds", "evsesec_certificate_not_after_timestamp_seconds", "evsesec_certificate_state",
	"evsesec_leaf_usable", "evsesec_leaf_needed", "evsesec_leaf_expiry_seconds", "evsesec_leaf_chain_expiry_seconds",
	"evsesec_ocsp_response_age_seconds", "evsesec_ocsp_response_next_update_seconds", "evsesec_ocsp_response_good",
	"evsesec_store_certificates", "evsesec_store_files", "evsesec_store_trust_anchors",
	"evsesec_store_bytes", "evsesec_store_bytes_limit", "evsesec_store_entries", "evsesec_store_entries_limit",
	"evsesec_csr_pending_keys", "evsesec_gc_runs_total", "evsesec_gc_removed_total", "evsesec_expiry_threshold_seconds",
	"evsesec_commands_total", "evsesec_command_duration_seconds", "evsesec_command_errors_total",
	"evsesec_broker_connected", "evsesec_broker_reconnects_total",
}

// The families without an OCSP response in the store (the OCSP test covers those).
func withoutOCSP() []string {
	var out []string
	for _, f := range families {
		if !strings.HasPrefix(f, "evsesec_ocsp_") {
			out = append(out, f)
		}
	}
	return out
}

// A scrape of a store with a CSMS leaf that expires in 10 days, an expired one and a future one:
// every family is there and each value is what the store's files say at the store's clock.
func TestScrapeValues(t *testing.T) {
	now := time.Now().Truncate(time.Second).Add(123 * time.Millisecond)
	f := newFixture(t, now, func() time.Time { return now }, nil)
	if _, err := f.call("no_such_command", map[string]any{}); err == nil {
		t.Fatal("an unknown command did not fail")
	}
	s := f.scrape()
	for _, name := range withoutOCSP() {
		if _, ok := s[name]; !ok {
			t.Errorf("family %s missing from the scrape", name)
		}
	}

	for _, c := range []struct {
		what  string
		fp    string
		left  time.Duration
		state string
	}{
		{"leaf expiring in 10 days", fingerprint(f.soon), f.soon.Cert.NotAfter.Sub(now), "in_use"},
		{"expired leaf", fingerprint(f.expired), f.expired.Cert.NotAfter.Sub(now), "expired"},
		{"future leaf", fingerprint(f.future), f.future.Cert.NotAfter.Sub(now), "not_yet_valid"},
	} {
		labels := map[string]string{"kind": "leaf", "leaf_type": "CSMS", "domain": "CSMS", "fingerprint": c.fp}
		if got := s.must(t, "evsesec_certificate_expiry_seconds", labels); got != c.left.Seconds() {
			t.Errorf("%s: expiry %v s, want %v", c.what, got, c.left.Seconds())
		}
		for _, st := range []string{"in_use", "valid", "not_yet_valid", "expired"} {
			want := 0.0
			if st == c.state {
				want = 1
			}
			l := map[string]string{"fingerprint": c.fp, "state": st}
			if got := s.must(t, "evsesec_certificate_state", l); got != want {
				t.Errorf("%s: state %s = %v, want %v", c.what, st, got, want)
			}
		}
	}
	if d := f.soon.Cert.NotAfter.Sub(now); d < 9*24*time.Hour || d > 10*24*time.Hour {
		t.Fatalf("fixture: the soon leaf ends in %v", d)
	}
	csms := map[string]string{"leaf_type": "CSMS"}
	if got, want := s.must(t, "evsesec_leaf_expiry_seconds", csms), f.soon.Cert.NotAfter.Sub(now).Seconds(); got != want {
		t.Errorf("CSMS leaf in use expires in %v s, want %v", got, want)
	}
	// The CSMS root outlives the leaf, so the chain ends when the leaf does.
	if got, want := s.must(t, "evsesec_leaf_chain_expiry_seconds", csms), f.soon.Cert.NotAfter.Sub(now).Seconds(); got != want {
		t.Errorf("CSMS chain expires in %v s, want %v", got, want)
	}
	for _, lt := range []string{"CSMS", "V2G"} {
		l := map[string]string{"leaf_type": lt}
		if s.must(t, "evsesec_leaf_usable", l) != 1 || s.must(t, "evsesec_leaf_needed", l) != 1 {
			t.Errorf("%s leaf: usable %v needed %v, want 1 1", lt, s.must(t, "evsesec_leaf_usable", l), s.must(t, "evsesec_leaf_needed", l))
		}
	}
	root := map[string]string{"kind": "ca", "domain": "CSMS", "fingerprint": fingerprint(f.pki.CSMSRoot)}
	if got, want := s.must(t, "evsesec_certificate_not_after_timestamp_seconds", root), float64(f.pki.CSMSRoot.Cert.NotAfter.Unix()); got != want {
		t.Errorf("CSMS root notAfter %v, want %v", got, want)
	}
	for _, c := range []struct {
		domain, kind string
		certs, files float64
	}{
		{"CSMS", "leaf", 3, 3}, {"CSMS", "ca", 1, 1}, {"V2G", "ca", 1, 1}, {"MO", "ca", 1, 1}, {"MF", "ca", 1, 1},
		// client/cso holds SECC_LEAF.pem and CPO_CERT_CHAIN.pem: one leaf in two files.
		{"V2G", "leaf", 1, 2},
	} {
		l := map[string]string{"domain": c.domain, "kind": c.kind}
		if got := s.must(t, "evsesec_store_certificates", l); got != c.certs {
			t.Errorf("%s %s: %v certificates, want %v", c.domain, c.kind, got, c.certs)
		}
		if got := s.must(t, "evsesec_store_files", l); got != c.files {
			t.Errorf("%s %s: %v files, want %v", c.domain, c.kind, got, c.files)
		}
	}
	entries, size := storeFiles(t, f.root)
	if got := s.must(t, "evsesec_store_entries", nil); got != float64(entries) {
		t.Errorf("store entries %v, want %d files on disk", got, entries)
	}
	if got := s.must(t, "evsesec_store_bytes", nil); got != float64(size) {
		t.Errorf("store bytes %v, want %d on disk", got, size)
	}
	if s.must(t, "evsesec_store_entries_limit", nil) != store.DefaultMaxStoreEntries || s.must(t, "evsesec_store_bytes_limit", nil) != store.DefaultMaxStoreBytes {
		t.Error("the limits are not the config's")
	}
	if got := s.must(t, "evsesec_expiry_threshold_seconds", map[string]string{"level": "critical"}); got != 7*24*3600 {
		t.Errorf("critical threshold %v s", got)
	}
	if got := s.must(t, "evsesec_command_errors_total", map[string]string{"command": "unknown", "type": "unknown_command"}); got != 1 {
		t.Errorf("unknown command errors %v, want 1", got)
	}
	if got := s.must(t, "evsesec_broker_connected", nil); got != 0 {
		t.Errorf("broker connected %v without a broker", got)
	}
}

// Installing and deleting a CA and a failing call move the store's and the service's series.
func TestScrapeFollowsCommands(t *testing.T) {
	f := newFixture(t, time.Now(), nil, nil)
	mo := map[string]string{"domain": "MO", "kind": "ca"}
	before := f.scrape()
	if got := before.must(t, "evsesec_store_certificates", mo); got != 1 {
		t.Fatalf("MO certificates before %v", got)
	}
	sub := f.pki.MOSubCA1
	if res, err := f.call("install_ca_certificate", map[string]any{"certificate": string(sub.CertPEM()), "certificate_type": "MO"}); err != nil || res != `"Accepted"` {
		t.Fatalf("install: %s %v", res, err)
	}
	s := f.scrape()
	if got := s.must(t, "evsesec_store_certificates", mo); got != 2 {
		t.Errorf("MO certificates after the install %v, want 2", got)
	}
	if _, ok := s.value(t, "evsesec_certificate_expiry_seconds", map[string]string{"kind": "ca", "domain": "MO", "fingerprint": fingerprint(sub)}); !ok {
		t.Error("no expiry series for the installed sub-CA")
	}
	if got := s.must(t, "evsesec_commands_total", map[string]string{"command": "install_ca_certificate", "result": "Accepted"}); got != 1 {
		t.Errorf("install_ca_certificate Accepted %v, want 1", got)
	}
	if got := s.must(t, "evsesec_command_duration_seconds", map[string]string{"command": "install_ca_certificate"}); got != 1 {
		t.Errorf("install_ca_certificate latency observations %v, want 1", got)
	}
	eb, sb := before.must(t, "evsesec_store_entries", nil), s.must(t, "evsesec_store_entries", nil)
	if sb != eb && sb != eb+1 {
		t.Errorf("entries %v → %v after installing into a bundle file", eb, sb)
	}

	h, err := certs.ComputeHashData(sub.Cert, f.pki.MORoot.Cert, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.call("delete_certificate", map[string]any{"certificate_hash_data": h}); err != nil || res != `"Accepted"` {
		t.Fatalf("delete: %s %v", res, err)
	}
	if res, _ := f.call("delete_certificate", map[string]any{"certificate_hash_data": h}); res != `"NotFound"` {
		t.Fatalf("second delete: %s", res)
	}
	if _, err := f.call("install_ca_certificate", map[string]any{"certificate_type": "MO"}); err == nil {
		t.Fatal("install without a certificate did not fail")
	}
	s = f.scrape()
	if got := s.must(t, "evsesec_store_certificates", mo); got != 1 {
		t.Errorf("MO certificates after the delete %v, want 1", got)
	}
	if _, ok := s.value(t, "evsesec_certificate_expiry_seconds", map[string]string{"fingerprint": fingerprint(sub)}); ok {
		t.Error("the deleted sub-CA still has a series")
	}
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"command": "delete_certificate", "result": "Accepted"}, 1},
		{map[string]string{"command": "delete_certificate", "result": "NotFound"}, 1},
		{map[string]string{"command": "install_ca_certificate", "result": "error"}, 1},
	} {
		if got := s.must(t, "evsesec_commands_total", c.labels); got != c.want {
			t.Errorf("commands %v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := s.must(t, "evsesec_command_errors_total", map[string]string{"command": "install_ca_certificate", "type": "invalid_arguments"}); got != 1 {
		t.Errorf("invalid_arguments errors %v, want 1", got)
	}
}

// Under a fake clock with the maintenance loop running: the seconds left fall by exactly the time
// that passed; an unanswered CSR's key is pending until a GC run removes it, and the GC series
// count the runs and what they removed; when the 10-day leaf expires no CSMS leaf is usable
// until the future one starts, which then is in use.
func TestScrapeFollowsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, time.Now(), nil, func(c *store.Config) {
			c.GCInterval = store.Duration(6 * time.Hour)
			c.CSRExpiry = store.Duration(time.Hour)
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { f.st.Maintain(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()

		soon := map[string]string{"fingerprint": fingerprint(f.soon), "kind": "leaf"}
		s0 := f.scrape()
		left0 := s0.must(t, "evsesec_certificate_expiry_seconds", soon)
		if res, err := f.call("generate_certificate_signing_request", map[string]any{"certificate_type": "CSMS", "country": "DE", "organization": "EVerest", "common": "CP1", "use_tpm": false}); err != nil || !strings.Contains(res, `"Accepted"`) {
			t.Fatalf("CSR: %s %v", res, err)
		}
		if got := f.scrape().must(t, "evsesec_csr_pending_keys", nil); got != 1 {
			t.Fatalf("pending CSR keys after a CSR %v, want 1", got)
		}

		time.Sleep(6*time.Hour + time.Second) // one GC period
		synctest.Wait()
		s1 := f.scrape()
		if got := s1.must(t, "evsesec_certificate_expiry_seconds", soon); got != left0-(6*time.Hour+time.Second).Seconds() {
			t.Errorf("expiry after 6h1s: %v, want %v", got, left0-(6*time.Hour+time.Second).Seconds())
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"evsesec_gc_runs_total", nil, 1},
			{"evsesec_gc_removed_total", map[string]string{"what": "csr_key"}, 1},
			{"evsesec_gc_removed_total", map[string]string{"what": "leaf_file"}, 0},
			{"evsesec_csr_pending_keys", nil, 0},
		} {
			if got := s1.must(t, c.name, c.labels); got != c.want {
				t.Errorf("after one GC: %s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}

		csms := map[string]string{"leaf_type": "CSMS"}
		time.Sleep(time.Until(f.soon.Cert.NotAfter.Add(time.Hour)))
		synctest.Wait()
		s2 := f.scrape()
		if got := s2.must(t, "evsesec_leaf_usable", csms); got != 0 {
			t.Errorf("CSMS leaf usable %v after the 10-day leaf expired, before the future one starts", got)
		}
		if _, ok := s2.value(t, "evsesec_leaf_expiry_seconds", csms); ok {
			t.Error("a CSMS leaf expiry series without a leaf in use")
		}
		if got := s2.must(t, "evsesec_certificate_state", map[string]string{"fingerprint": fingerprint(f.soon), "state": "expired"}); got != 1 {
			t.Errorf("the 10-day leaf is not expired: %v", got)
		}

		time.Sleep(time.Until(f.future.Cert.NotBefore.Add(time.Hour)))
		synctest.Wait()
		s3 := f.scrape()
		if got := s3.must(t, "evsesec_leaf_usable", csms); got != 1 {
			t.Errorf("CSMS leaf usable %v after the future leaf started", got)
		}
		if got := s3.must(t, "evsesec_certificate_state", map[string]string{"fingerprint": fingerprint(f.future), "state": "in_use"}); got != 1 {
			t.Errorf("the future leaf is not in use: %v", got)
		}
		if runs := s3.must(t, "evsesec_gc_runs_total", nil); runs <= 1 {
			t.Errorf("GC runs %v after weeks of 6-hour periods", runs)
		}
	})
}

// The endpoint listens on loopback only unless told otherwise, and serves what the registry has.
func TestListen(t *testing.T) {
	for _, c := range []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"127.0.0.1:9464", false, true}, {"[::1]:9464", false, true}, {"localhost:9464", false, true},
		{":9464", false, false}, {"0.0.0.0:9464", false, false}, {"192.0.2.1:9464", false, false}, {"example.org:9464", false, false},
		{"0.0.0.0:9464", true, true}, {"9464", false, false},
	} {
		err := metrics.CheckAddr(c.addr, c.allow)
		if (err == nil) != c.ok {
			t.Errorf("CheckAddr(%q, %v) = %v, want ok %v", c.addr, c.allow, err, c.ok)
		}
		if err != nil && c.addr != "9464" && !errors.Is(err, metrics.ErrNotLoopback) {
			t.Errorf("CheckAddr(%q): %v does not match ErrNotLoopback", c.addr, err)
		}
	}
	if _, err := metrics.New().Listen("0.0.0.0:0", false, nil); !errors.Is(err, metrics.ErrNotLoopback) {
		t.Errorf("Listen on every interface: %v", err)
	}

	f := newFixture(t, time.Now(), nil, nil)
	f.m.BrokerConnection(true)
	f.m.BrokerConnection(false)
	f.m.BrokerConnection(true)
	ep, err := f.m.Listen("127.0.0.1:0", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	resp, err := http.Get("http://" + ep.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	s := parseText(t, string(body))
	if s.must(t, "evsesec_broker_connected", nil) != 1 || s.must(t, "evsesec_broker_reconnects_total", nil) != 1 {
		t.Errorf("broker connected %v reconnects %v, want 1 1", s.must(t, "evsesec_broker_connected", nil), s.must(t, "evsesec_broker_reconnects_total", nil))
	}
	if _, ok := s["evsesec_leaf_usable"]; !ok {
		t.Error("no store families on the endpoint")
	}
}

// movableClock is a store clock the test moves.
type movableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movableClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *movableClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The cached OCSP response of the SECC leaf: its age and the time to its nextUpdate at the
// store's clock, negative once it is stale; revoked is not good.
func TestScrapeOCSP(t *testing.T) {
	clock := &movableClock{t: time.Now().Truncate(time.Second)}
	f := newFixture(t, clock.now(), clock.now, nil)
	start := clock.now()
	h, err := certs.ComputeHashData(f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	thisUpdate, nextUpdate := start.Add(-10*time.Minute), start.Add(24*time.Hour)
	resp := testtool.OCSPResponse(t, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA2.Key, false, thisUpdate, nextUpdate)
	if err := f.st.UpdateOCSPCache(h, resp); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour)
	s := f.scrape()
	for _, name := range families {
		if _, ok := s[name]; !ok && strings.HasPrefix(name, "evsesec_ocsp_") {
			t.Errorf("family %s missing from the scrape", name)
		}
	}
	secc := map[string]string{"leaf_type": "V2G", "fingerprint": fingerprint(f.pki.SECCLeaf)}
	if got, want := s.must(t, "evsesec_ocsp_response_age_seconds", secc), clock.now().Sub(thisUpdate).Seconds(); got != want {
		t.Errorf("OCSP age %v s, want %v", got, want)
	}
	if got, want := s.must(t, "evsesec_ocsp_response_next_update_seconds", secc), nextUpdate.Sub(clock.now()).Seconds(); got != want {
		t.Errorf("OCSP next update in %v s, want %v", got, want)
	}
	if got := s.must(t, "evsesec_ocsp_response_good", secc); got != 1 {
		t.Errorf("OCSP good %v, want 1", got)
	}

	clock.advance(24 * time.Hour)
	s = f.scrape()
	if got, want := s.must(t, "evsesec_ocsp_response_next_update_seconds", secc), nextUpdate.Sub(clock.now()).Seconds(); got != want || got >= 0 {
		t.Errorf("stale OCSP next update in %v s, want %v (negative)", got, want)
	}

	revoked := testtool.OCSPResponse(t, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA2.Key, true, clock.now().Add(-time.Minute), clock.now().Add(time.Hour))
	if err := f.st.UpdateOCSPCache(h, revoked); err != nil {
		t.Fatal(err)
	}
	if got := f.scrape().must(t, "evsesec_ocsp_response_good", secc); got != 0 {
		t.Errorf("OCSP good %v for a revoked response, want 0", got)
	}
}
