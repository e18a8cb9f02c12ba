package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/testpki"
)

// The module started by the manager serves metrics at EVSESEC_METRICS_ADDR (the manager's argv and
// the manifest are EVerest's): its commands are counted, and the broker connection series follow
// the broker going away and coming back (the runner's connection callback).
func TestModuleMetrics(t *testing.T) {
	bin := buildBinary(t)
	// Started and closed here (the helper's cleanup would close it twice); it comes back on
	// the port the kernel gave it.
	broker, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := broker.Addr()
	closed := false
	defer func() {
		if !closed {
			broker.Close()
		}
	}()
	u, err := url.Parse(broker.URL())
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	writePKI(t, filepath.Join(prefix, "etc", "everest", "certs"), testpki.Options{})
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: broker.URL()})
	var errb lockedBuffer
	cmd := &exec.Cmd{Path: bin, Args: managerArgv(prefix, u.Port()), Stderr: &errb, Stdout: &errb,
		Env: append(os.Environ(), envMetricsAddr+"=127.0.0.1:0")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	mgr.WaitReady(t, 20*time.Second)
	// The endpoint's port is the one the kernel gave it, in the module's log.
	metrics := waitLogMatch(t, &errb, metricsURL)

	ocpp := everesttest.NewCaller(t, broker.URL(), everest.NewTopics("everest/", "evse_security", "main"), "ocpp")
	if r, err := ocpp.Call("get_leaf_certificate_info", map[string]any{"certificate_type": "CSMS", "encoding": "PEM", "include_ocsp": false}); err != nil || r.Error != nil {
		t.Fatalf("get_leaf_certificate_info: %v %+v", err, r)
	}
	s := scrapeURL(t, metrics)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"evsesec_commands_total", map[string]string{"command": "get_leaf_certificate_info", "result": "Accepted"}, 1},
		{"evsesec_leaf_usable", map[string]string{"leaf_type": "CSMS"}, 1},
		{"evsesec_broker_connected", nil, 1},
		{"evsesec_broker_reconnects_total", nil, 0},
	} {
		if got := series(t, s, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// The broker goes away: the module notices, and reconnects once it is back.
	closed = true
	if err := broker.Close(); err != nil {
		t.Fatal(err)
	}
	waitSeries(t, metrics, "evsesec_broker_connected", 0, &errb)
	everesttest.StartBrokerAt(t, addr)
	waitSeries(t, metrics, "evsesec_broker_connected", 1, &errb)
	if got := series(t, scrapeURL(t, metrics), "evsesec_broker_reconnects_total", nil); got != 1 {
		t.Errorf("reconnects %v after one broker restart, want 1", got)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, errb.String())
	}
}

// waitSeries scrapes until the unlabelled series name has value want: the module's reaction to
// the broker is asynchronous, so the test waits for it (bounded) instead of asserting at a time.
func waitSeries(t *testing.T, url, name string, want float64, log *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fams, err := tryScrape(url); err == nil && value(fams[name]) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %v:\n%s", name, want, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLogMatch waits until log has a match of re and returns its first group. The child's
// stderr reaches log through a copying goroutine, so a line written before an event the test saw
// on MQTT may still be on its way.
func waitLogMatch(t *testing.T, log *lockedBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no match of %s in the log:\n%s", re, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func value(f *dto.MetricFamily) float64 {
	if f == nil || len(f.Metric) != 1 {
		return -1
	}
	if g := f.Metric[0].Gauge; g != nil {
		return g.GetValue()
	}
	return f.Metric[0].Counter.GetValue()
}

// A metrics address the module may not use is logged; the module still serves (the manager would
// take every module down with it).
func TestModuleMetricsRefused(t *testing.T) {
	bin := buildBinary(t)
	broker := everesttest.StartBroker(t)
	u, err := url.Parse(broker.URL())
	if err != nil {
		t.Fatal(err)
	}
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: broker.URL()})
	var errb lockedBuffer
	cmd := &exec.Cmd{Path: bin, Args: managerArgv(t.TempDir(), u.Port()), Stderr: &errb, Stdout: &errb,
		Env: append(os.Environ(), envMetricsAddr+"=0.0.0.0:9464")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	mgr.WaitReady(t, 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit %d:\n%s", code, errb.String())
	}
	if log := errb.String(); !strings.Contains(log, "metrics endpoint not started") || !strings.Contains(log, "not a loopback address") {
		t.Errorf("the refused address is not in the log:\n%s", log)
	}
}
