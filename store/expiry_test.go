package store_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// expiryStore writes the test PKI so that its leaves end about 40 days after now and opens it
// with the maintenance loop's warnings going to a log buffer.
func expiryStore(t *testing.T, now time.Time, edit func(*store.Config)) (*store.Store, *testpki.PKI, *syncBuffer, *eventLog) {
	t.Helper()
	p, err := testpki.Generate(testpki.Options{Now: now.AddDate(-testpki.LeafValidityYears, 0, 40)})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := p.WriteLayout(root, ""); err != nil {
		t.Fatal(err)
	}
	cfg := store.DefaultConfig(root)
	cfg.GCInterval = store.Duration(200 * 24 * time.Hour) // few wake-ups besides the thresholds
	if edit != nil {
		edit(&cfg)
	}
	logs, events := &syncBuffer{}, &eventLog{}
	s, err := store.Open(cfg, store.Options{
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnEvent: events.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p, logs, events
}

// expiryWarnings counts the expiry warnings in the log, by role and threshold.
func expiryWarnings(logs *syncBuffer) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "expires soon") {
			continue
		}
		key := ""
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "type=") || strings.HasPrefix(f, "role=") || strings.HasPrefix(f, "threshold_days=") {
				key += f + " "
			}
		}
		out[strings.TrimSpace(key)]++
	}
	return out
}

// The maintenance loop warns once per threshold and certificate, at the moment the threshold is
// crossed (it wakes up for it), not on every wake-up; the leaf's warnings are also events.
func TestMaintainExpiryWarningsOncePerThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, logs, events := expiryStore(t, time.Now(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.Maintain(ctx) })
		defer func() { cancel(); wg.Wait() }()
		synctest.Wait()
		if w := expiryWarnings(logs); len(w) != 0 {
			t.Fatalf("warnings 40 days ahead: %v", w)
		}

		end := p.CSMSLeaf.Cert.NotAfter
		time.Sleep(time.Until(end.Add(-30 * 24 * time.Hour)))
		synctest.Wait()
		want := map[string]int{"type=CSMS role=leaf threshold_days=30": 1, "type=V2G role=leaf threshold_days=30": 1}
		if w := expiryWarnings(logs); !equalCounts(w, want) {
			t.Fatalf("at the 30-day threshold: %v, want %v", w, want)
		}
		time.Sleep(10 * 24 * time.Hour)
		synctest.Wait()
		if w := expiryWarnings(logs); !equalCounts(w, want) {
			t.Fatalf("10 days later: %v, want still %v", w, want)
		}

		time.Sleep(time.Until(end.Add(-7 * 24 * time.Hour)))
		synctest.Wait()
		want["type=CSMS role=leaf threshold_days=7"] = 1
		want["type=V2G role=leaf threshold_days=7"] = 1
		time.Sleep(2 * 24 * time.Hour)
		synctest.Wait()
		if w := expiryWarnings(logs); !equalCounts(w, want) {
			t.Fatalf("past the 7-day threshold: %v, want %v", w, want)
		}
		n := 0
		for _, e := range events.take() {
			if e.Kind == store.EventLeafExpiry {
				n++
			}
		}
		if n != 4 {
			t.Errorf("%d leaf_expiring events, want 4 (two thresholds, two leaf types)", n)
		}
	})
}

// The CAs a leaf in use depends on are watched too, each once; a certificate first seen within
// the critical threshold gets one warning, not one per threshold.
func TestMaintainExpiryWarningsForChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Thresholds beyond the CAs' ten years: every certificate is within both at once.
		s, _, logs, _ := expiryStore(t, time.Now(), func(c *store.Config) {
			c.ExpiryWarningDays, c.ExpiryCriticalDays = 5000, 4000
		})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.Maintain(ctx) })
		defer func() { cancel(); wg.Wait() }()
		synctest.Wait()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		// CSMS: leaf, root. V2G: leaf, CPO Sub-CA 2, CPO Sub-CA 1, V2G root.
		want := map[string]int{
			"type=CSMS role=leaf threshold_days=4000": 1, "type=CSMS role=CA threshold_days=4000": 1,
			"type=V2G role=leaf threshold_days=4000": 1, "type=V2G role=CA threshold_days=4000": 3,
		}
		if w := expiryWarnings(logs); !equalCounts(w, want) {
			t.Fatalf("warnings %v, want %v", w, want)
		}
	})
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// doctor reports the same thresholds as the loop: warning, then critical, for the leaf in use.
func TestDoctorExpiryThresholds(t *testing.T) {
	now := time.Now()
	p, err := testpki.Generate(testpki.Options{Now: now.AddDate(-testpki.LeafValidityYears, 0, 40)})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := p.WriteLayout(root, ""); err != nil {
		t.Fatal(err)
	}
	end := p.CSMSLeaf.Cert.NotAfter
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{end.Add(-35 * 24 * time.Hour), ""},
		{end.Add(-20 * 24 * time.Hour), "within the 30-day warning threshold"},
		{end.Add(-3 * 24 * time.Hour), "within the 7-day critical threshold"},
	} {
		at := c.at
		s, err := store.Open(store.DefaultConfig(root), store.Options{Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, f := range s.Diagnose() {
			if strings.Contains(f.Problem, "leaf in use expires") {
				found = append(found, f.Problem)
			}
		}
		s.Close()
		switch {
		case c.want == "" && len(found) != 0:
			t.Errorf("%v before the end: %q, want no expiry finding", end.Sub(at), found)
		case c.want != "" && (len(found) != 2 || !strings.Contains(found[0], c.want) || !strings.Contains(found[1], c.want)):
			t.Errorf("%v before the end: %q, want both leaves %q", end.Sub(at), found, c.want)
		}
	}
}

// The thresholds are config keys with defaults; a critical one beyond the warning one is refused.
func TestExpiryThresholdConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "evsesec.yaml")
	if err := os.WriteFile(path, []byte("expiry_warning_days: 60\nexpiry_critical_days: 14\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := store.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if w, c := cfg.ExpiryThresholds(); w != 60*24*time.Hour || c != 14*24*time.Hour {
		t.Errorf("thresholds %v %v, want 60 and 14 days", w, c)
	}
	if w, c := (store.Config{}).ExpiryThresholds(); w != 30*24*time.Hour || c != 7*24*time.Hour {
		t.Errorf("zero config thresholds %v %v, want the defaults 30 and 7 days", w, c)
	}
	for _, bad := range []struct{ w, c int }{{10, 20}, {-1, 0}, {0, -3}} {
		cfg := store.DefaultConfig(dir)
		cfg.ExpiryWarningDays, cfg.ExpiryCriticalDays = bad.w, bad.c
		if err := cfg.Validate(); err == nil {
			t.Errorf("warning %d critical %d validated", bad.w, bad.c)
		}
	}
}
