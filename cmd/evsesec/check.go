package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/evsesec/evsesec/store"
)

// The exit statuses of `evsesec check`: the monitoring plugin convention of Nagios, Icinga and
// the agents that run their plugins (Zabbix, Checkmk, Sensu).
const (
	checkOK       = 0
	checkWarning  = 1
	checkCritical = 2
	checkUnknown  = 3
)

var checkStateNames = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// storeFullWarning is the share of a store limit from which check warns: past the limit,
// installs fail with CertificateStoreMaxLengthExceeded.
const storeFullWarning = 0.9

const checkUsage = `Usage: evsesec check [--certs DIR | --config FILE] [--warning DAYS] [--critical DAYS]

A monitoring plugin: prints one line "EVSESEC <STATE> - <summary> | <perfdata>" and exits
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the store cannot be read, or a bad command line).

CRITICAL  a needed leaf has no usable certificate (the CSMS leaf always; the SECC leaf when a V2G
          root is installed): missing, expired, not yet valid, untrusted or without its key;
          the leaf in use or a CA of its chain expires within the critical threshold;
          the SECC leaf's cached OCSP response says revoked.
WARNING   the leaf in use or a CA of its chain expires within the warning threshold;
          the SECC leaf's cached OCSP response is past its nextUpdate;
          a CA domain holds certificates but none valid now;
          the store is at 90% of max_fs_certificate_store_entries or max_fs_usage_bytes.

The thresholds default to the config's expiry_warning_days and expiry_critical_days (30, 7).

Flags:`

// checkState is what check found: the worst state and a reason for each problem.
type checkState struct {
	state    int
	problems []string
}

func (c *checkState) raise(state int, format string, args ...any) {
	c.state = max(c.state, state)
	c.problems = append(c.problems, checkStateNames[state]+": "+fmt.Sprintf(format, args...))
}

func runCheck(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	warnDays := fs.Int("warning", 0, "warning threshold in days (default: the config's expiry_warning_days)")
	critDays := fs.Int("critical", 0, "critical threshold in days (default: the config's expiry_critical_days)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, checkUsage)
		fs.PrintDefaults()
	}
	unknown := func(msg string) int {
		fmt.Fprintln(stdout, "EVSESEC UNKNOWN - "+pluginText(msg))
		return checkUnknown
	}
	if err := fs.Parse(argv); err != nil {
		if err == flag.ErrHelp {
			return checkOK
		}
		return unknown("bad command line: " + err.Error())
	}
	if fs.NArg() > 0 {
		return unknown("unexpected argument " + fs.Arg(0))
	}
	cfg, err := sf.load()
	if err != nil {
		return unknown(err.Error())
	}
	if *warnDays > 0 {
		cfg.ExpiryWarningDays = *warnDays
	}
	if *critDays > 0 {
		cfg.ExpiryCriticalDays = *critDays
	}
	// A store whose root is not there is a wrong path or an unmounted partition, not a station
	// without certificates: say so instead of reporting every leaf missing.
	if _, err := os.Stat(cfg.CertsRoot); err != nil {
		return unknown("certificate store not readable: " + err.Error())
	}
	st, err := sf.openConfig(cfg, stderr)
	if err != nil {
		return unknown("certificate store cannot be opened: " + err.Error())
	}
	defer st.Close()
	line, state := checkLine(st.Health())
	fmt.Fprintln(stdout, line)
	return state
}

// checkLine applies the rules of checkUsage to h and makes the plugin's output line.
func checkLine(h store.Health) (string, int) {
	var c checkState
	var summary, perf []string
	critS, warnS := h.ExpiryCritical.Seconds(), h.ExpiryWarning.Seconds()
	for _, l := range h.Leaves {
		name := leafName(l.Type)
		if l.InUse == nil {
			if l.Needed {
				c.raise(checkCritical, "no usable %s (%s)", name, l.Status)
			} else {
				summary = append(summary, "no "+name+" (not needed)")
			}
			continue
		}
		left := l.InUse.NotAfter.Sub(h.Time)
		summary = append(summary, fmt.Sprintf("%s expires in %s", name, daysText(left)))
		perf = append(perf, fmt.Sprintf("%s_expiry=%.0fs;%.0f:;%.0f:;;", strings.ReplaceAll(strings.ToLower(name), " ", "_"), left.Seconds(), warnS, critS))
		expiry(&c, h, name, l.InUse.NotAfter)
		for _, ca := range l.Chain {
			expiry(&c, h, fmt.Sprintf("CA %s of the %s", ca.Subject, name), ca.NotAfter)
		}
		for _, o := range l.OCSP {
			switch {
			case !o.InUse:
			case o.Status == "revoked":
				c.raise(checkCritical, "the OCSP response of the %s says revoked", name)
			case o.Stale:
				c.raise(checkWarning, "the OCSP response of the %s is past its nextUpdate (%s)", name, o.NextUpdate.UTC().Format(time.RFC3339))
			}
		}
	}
	for _, d := range h.Domains {
		if d.Certificates > 0 && d.Anchors == 0 {
			c.raise(checkWarning, "the %s domain has no CA certificate that is valid now", d.Domain)
		}
	}
	if h.MaxEntries > 0 && float64(h.Entries) >= storeFullWarning*float64(h.MaxEntries) {
		c.raise(checkWarning, "the store holds %d of at most %d files", h.Entries, h.MaxEntries)
	}
	if h.MaxBytes > 0 && float64(h.Bytes) >= storeFullWarning*float64(h.MaxBytes) {
		c.raise(checkWarning, "the store holds %d of at most %d bytes", h.Bytes, h.MaxBytes)
	}
	perf = append(perf,
		fmt.Sprintf("store_entries=%d;;;0;%s", h.Entries, limitText(int64(h.MaxEntries))),
		fmt.Sprintf("store_bytes=%dB;;;0;%s", h.Bytes, limitText(h.MaxBytes)),
		fmt.Sprintf("pending_csr_keys=%d;;;0;", h.PendingCSRKeys))
	text := strings.Join(summary, ", ")
	if len(c.problems) > 0 {
		text = strings.Join(c.problems, "; ")
	}
	return fmt.Sprintf("EVSESEC %s - %s | %s", checkStateNames[c.state], pluginText(text), strings.Join(perf, " ")), c.state
}

// expiry raises the state for a certificate that ends within a threshold.
func expiry(c *checkState, h store.Health, what string, notAfter time.Time) {
	left := notAfter.Sub(h.Time)
	switch {
	case left <= 0:
		c.raise(checkCritical, "%s has expired", what)
	case left <= h.ExpiryCritical:
		c.raise(checkCritical, "%s expires in %s", what, daysText(left))
	case left <= h.ExpiryWarning:
		c.raise(checkWarning, "%s expires in %s", what, daysText(left))
	}
}

func leafName(lt store.LeafType) string {
	switch lt {
	case store.LeafV2G:
		return "SECC leaf"
	case store.LeafV2G20:
		return "ISO 15118-20 SECC leaf"
	}
	return "CSMS leaf"
}

func daysText(d time.Duration) string {
	days := int(math.Floor(d.Hours() / 24))
	if days == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

func limitText(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// pluginText keeps the output one line (plugins are read line by line, and a certificate's
// subject is chosen by whoever made it) and keeps '|' out of the text, where it would start the
// perfdata.
func pluginText(s string) string {
	return strings.ReplaceAll(printable(s), "|", "/")
}
