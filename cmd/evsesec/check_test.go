package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// checkStore writes the test PKI so that its leaves (CSMS and SECC) end daysLeft days from now
// (less the hour testpki starts them early), and returns the certs root and the layout.
func checkStore(t *testing.T, daysLeft int) (string, *testpki.Layout) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "certs")
	_, l := writePKI(t, root, testpki.Options{Now: time.Now().AddDate(-testpki.LeafValidityYears, 0, daysLeft)})
	return root, l
}

func removeFiles(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

// `evsesec check` exits 0/1/2/3 by the documented rules and prints one plugin line.
func TestCheckExitCodes(t *testing.T) {
	for _, c := range []struct {
		name  string
		days  int
		edit  func(t *testing.T, root string, l *testpki.Layout) []string // returns extra flags
		code  int
		state string
		text  string
	}{
		{name: "leaves for two years", days: 730, code: 0, state: "OK", text: "CSMS leaf expires in {days} days, SECC leaf expires in {days} days"},
		{name: "leaves within the warning threshold", days: 20, code: 1, state: "WARNING", text: "WARNING: CSMS leaf expires in {days} days; WARNING: SECC leaf expires in {days} days"},
		{name: "leaves within the critical threshold", days: 3, code: 2, state: "CRITICAL", text: "CRITICAL: CSMS leaf expires in {days} days; CRITICAL: SECC leaf expires in {days} days"},
		{name: "expired leaves", days: -5, code: 2, state: "CRITICAL", text: "CRITICAL: no usable CSMS leaf (NotFoundValid); CRITICAL: no usable SECC leaf (NotFoundValid)"},
		{name: "no CSMS leaf", days: 730, code: 2, state: "CRITICAL", text: "CRITICAL: no usable CSMS leaf (NotFound)", edit: func(t *testing.T, root string, l *testpki.Layout) []string {
			removeFiles(t, l.CSMSLeafCert, l.CSMSLeafKey)
			return nil
		}},
		{name: "SECC leaf without its key", days: 730, code: 2, state: "CRITICAL", text: "CRITICAL: no usable SECC leaf (PrivateKeyNotFound)", edit: func(t *testing.T, root string, l *testpki.Layout) []string {
			removeFiles(t, l.SECCLeafKey)
			return nil
		}},
		{name: "no V2G root: the SECC leaf is not needed", days: 730, code: 0, state: "OK", text: "CSMS leaf expires in {days} days, no SECC leaf (not needed)", edit: func(t *testing.T, root string, l *testpki.Layout) []string {
			removeFiles(t, l.V2GBundle, l.SECCLeafCert, l.SECCChain, l.SECCLeafKey)
			return nil
		}},
		{name: "thresholds from the flags", days: 20, code: 0, state: "OK", edit: func(*testing.T, string, *testpki.Layout) []string {
			return []string{"--warning", "10", "--critical", "5"}
		}},
		{name: "critical threshold from the flags", days: 20, code: 2, state: "CRITICAL", edit: func(*testing.T, string, *testpki.Layout) []string {
			return []string{"--warning", "40", "--critical", "25"}
		}},
		{name: "thresholds from the config", days: 20, code: 2, state: "CRITICAL", edit: func(t *testing.T, root string, _ *testpki.Layout) []string {
			return []string{"--config", writeCheckConfig(t, root, "expiry_warning_days: 60\nexpiry_critical_days: 21\n")}
		}},
		{name: "store near its entry limit", days: 730, code: 1, state: "WARNING", text: "WARNING: the store holds 9 of at most 10 files", edit: func(t *testing.T, root string, _ *testpki.Layout) []string {
			return []string{"--config", writeCheckConfig(t, root, "max_fs_certificate_store_entries: 10\n")}
		}},
		{name: "a domain whose only root expired", days: 730, code: 1, state: "WARNING", text: "WARNING: the MF domain has no CA certificate that is valid now", edit: func(t *testing.T, root string, l *testpki.Layout) []string {
			old, err := testpki.SelfSigned(testpki.Spec{CommonName: "Old MF Root", IsCA: true, MaxPathLen: -1,
				NotBefore: time.Now().AddDate(-3, 0, 0), NotAfter: time.Now().AddDate(0, 0, -1)})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(l.MFBundle, old.CertPEM(), 0o644); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, l := checkStore(t, c.days)
			data, err := os.ReadFile(l.CSMSLeafCert)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := certs.ParseCertificates(data)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"check"}
			var extra []string
			if c.edit != nil {
				extra = c.edit(t, root, l)
			}
			if !containsFlag(extra, "--config") {
				args = append(args, "--certs", root)
			}
			out, errOut, code := runCLI(append(args, extra...)...)
			want := c.text
			if len(cert) > 0 {
				// Whole days left, as the store counts them; the leaf ends an hour short of a
				// whole day from now, so the second between here and the check cannot change it.
				want = strings.ReplaceAll(want, "{days}", fmt.Sprint(int(math.Floor(time.Until(cert[0].NotAfter).Hours()/24))))
			}
			if code != c.code {
				t.Errorf("exit %d, want %d: %s%s", code, c.code, out, errOut)
			}
			checkPluginLine(t, out, c.state)
			if want != "" && !strings.HasPrefix(out, "EVSESEC "+c.state+" - "+want+" | ") {
				t.Errorf("output %q, want the text %q", out, want)
			}
		})
	}
}

// The SECC leaf's cached OCSP response: stale is a warning, revoked critical.
func TestCheckOCSP(t *testing.T) {
	for _, c := range []struct {
		name    string
		revoked bool
		age     time.Duration // how long ago the response was stored; it is valid for a day
		code    int
		text    string
	}{
		{"fresh good response", false, time.Hour, 0, "CSMS leaf expires in"},
		{"stale response", false, 2 * 24 * time.Hour, 1, "WARNING: the OCSP response of the SECC leaf is past its nextUpdate"},
		{"revoked", true, time.Hour, 2, "CRITICAL: the OCSP response of the SECC leaf says revoked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "certs")
			p, _ := writePKI(t, root, testpki.Options{Now: time.Now().Add(-c.age - time.Hour)})
			stored := time.Now().Add(-c.age)
			st, err := store.Open(store.DefaultConfig(root), store.Options{Clock: func() time.Time { return stored }})
			if err != nil {
				t.Fatal(err)
			}
			h, err := certs.ComputeHashData(p.SECCLeaf.Cert, p.CPOSubCA2.Cert, certs.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			resp := testtool.OCSPResponse(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, p.CPOSubCA2.Key, c.revoked, stored.Add(-time.Minute), stored.Add(24*time.Hour))
			if err := st.UpdateOCSPCache(h, resp); err != nil {
				t.Fatal(err)
			}
			st.Close()
			out, _, code := runCLI("check", "--certs", root)
			if code != c.code || !strings.Contains(out, " - "+c.text) {
				t.Errorf("exit %d %q, want %d and %q", code, out, c.code, c.text)
			}
		})
	}
}

// Exit 3 (UNKNOWN) when the store cannot be read or the command line is wrong.
func TestCheckUnknown(t *testing.T) {
	for _, args := range [][]string{
		{"--certs", filepath.Join(t.TempDir(), "missing")},
		{"--config", filepath.Join(t.TempDir(), "missing.yaml")},
		{"--no-such-flag"},
		{"--certs", t.TempDir(), "extra"},
	} {
		out, _, code := runCLI(append([]string{"check"}, args...)...)
		if code != 3 || !strings.HasPrefix(out, "EVSESEC UNKNOWN - ") || strings.Count(out, "\n") != 1 {
			t.Errorf("check %v: exit %d, %q; want 3 and one UNKNOWN line", args, code, out)
		}
	}
}

// checkPluginLine checks the plugin output format: one line, the state, perfdata after '|'
// with the leaf expiry in seconds and the configured thresholds as Nagios ranges.
func checkPluginLine(t *testing.T, out, state string) {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("want exactly one line, got %q", out)
	}
	if !strings.HasPrefix(out, "EVSESEC "+state+" - ") {
		t.Errorf("want state %s, got %q", state, out)
	}
	text, perf, ok := strings.Cut(strings.TrimSpace(out), " | ")
	if !ok || strings.Contains(text, "|") {
		t.Fatalf("want one ' | ' before the perfdata, got %q", out)
	}
	for _, p := range strings.Fields(perf) {
		label, rest, ok := strings.Cut(p, "=")
		if !ok || label == "" || strings.Count(rest, ";") != 4 {
			t.Errorf("perfdata %q is not label=value;warn;crit;min;max", p)
		}
	}
	if !strings.Contains(perf, "store_entries=") || !strings.Contains(perf, "pending_csr_keys=") {
		t.Errorf("perfdata %q lacks the store figures", perf)
	}
}

func writeCheckConfig(t *testing.T, root, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evsesec.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("certs_root: %s\n%s", root, body)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func containsFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag {
			return true
		}
	}
	return false
}
