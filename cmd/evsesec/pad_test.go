package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/testpki"
)

func TestParsePadResults(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{"", 0, ""},
		{"false", 0, ""},
		{"FALSE", 0, ""},
		{"0", 0, ""},
		{" true ", everest.DefaultResultPadding, ""},
		{"True", everest.DefaultResultPadding, ""},
		{"65536", 65536, ""},
		{"1500", 1500, ""},
		{"262144", everest.MaxResultPadding, ""},
		{"1", 0, "within one TCP segment"},
		{"1499", 0, "within one TCP segment"},
		{"-1", 0, "negative"},
		{"262145", 0, "500 KiB"},
		{"1048576", 0, "500 KiB"},
		{"99999999999999999999", 0, "neither"},
		{"yes", 0, "neither"},
		{"64KiB", 0, "neither"},
		{"0x10000", 0, "neither"},
	} {
		got, err := parsePadResults(c.in)
		switch {
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("parsePadResults(%q) = %d, %v; want %d", c.in, got, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("parsePadResults(%q) = %d, %v; want an error saying %q", c.in, got, err, c.wantErr)
		}
	}
}

// Module mode reads the padding from the environment and says so once; a value it cannot use is
// an error in the log and leaves the wire unchanged.
func TestPadResultsFromEnv(t *testing.T) {
	for _, c := range []struct {
		value   *string
		want    int
		wantLog string
	}{
		{nil, 0, ""},
		{ptr("false"), 0, ""},
		{ptr("true"), everest.DefaultResultPadding, "command results padded"},
		{ptr("100000"), 100000, "min_bytes=100000"},
		{ptr("lots"), 0, "ignoring " + envPadResults},
	} {
		if c.value == nil {
			t.Setenv(envPadResults, "") // restored after the test
			os.Unsetenv(envPadResults)
		} else {
			t.Setenv(envPadResults, *c.value)
		}
		var log bytes.Buffer
		got := padResultsFromEnv(slog.New(slog.NewTextHandler(&log, nil)))
		if got != c.want || (c.wantLog == "") != (log.Len() == 0) || !strings.Contains(log.String(), c.wantLog) {
			t.Errorf("%s=%v: %d, log %q; want %d and a log saying %q", envPadResults, c.value, got, log.String(), c.want, c.wantLog)
		}
	}
}

func ptr(s string) *string { return &s }

// `serve --pad-results` pads the results it sends through an external broker; it refuses the
// flag with the embedded broker (which sends every packet at once) and sizes it cannot use.
func TestServePadResults(t *testing.T) {
	root, _ := servePKI(t)
	for _, args := range [][]string{
		{"--pad-results"},
		{"--pad-results=-1", "--broker", "tcp://127.0.0.1:1"},
		{"--pad-results=10", "--broker", "tcp://127.0.0.1:1"},
		{"--pad-results=2000000", "--broker", "tcp://127.0.0.1:1"},
	} {
		if _, errOut, code := runCLI(append([]string{"serve", "--certs", root}, args...)...); code != exitUsage || !strings.Contains(errOut, "pad-results") {
			t.Errorf("serve %q: exit %d, %q", args, code, errOut)
		}
	}

	broker := everesttest.StartBroker(t).URL()
	srv := serveInProcess("--certs", root, "--broker", broker, "--pad-results=4096")
	defer srv.stop(t)
	waitAnswering(t, broker, srv.log.String)
	ocpp := everesttest.NewCaller(t, broker, everest.NewTopics("", "", ""), "ocpp")
	r, err := ocpp.Call("get_leaf_expiry_days_count", map[string]any{"certificate_type": "CSMS"})
	if err != nil || r.Error != nil {
		t.Fatalf("call: %v %+v", err, r.Error)
	}
	if len(r.Payload) < 4096 || len(bytes.TrimRight(r.Payload, " ")) >= 4096 {
		t.Errorf("result of %d bytes (%d without trailing spaces), want at least 4096 of padding", len(r.Payload), len(bytes.TrimRight(r.Payload, " ")))
	}
	var days int
	if err := json.Unmarshal(r.Retval, &days); err != nil || days <= 0 {
		t.Errorf("retval %s: %v", r.Retval, err)
	}
	if !strings.Contains(srv.log.String(), "command results padded") {
		t.Errorf("no log line about the padding:\n%s", srv.log.String())
	}
}

// The binary started by the manager with EVSESEC_MQTT_PAD_RESULTS=true under mosquitto's
// default configuration: the result a caller receives is at least 64 KiB, decodes to the value
// the same module answers without padding, and the log says why the results are padded.
func TestModulePadResults(t *testing.T) {
	bin := buildBinary(t)
	brokerURL := everesttest.StartMosquittoConfig(t, "")
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	writePKI(t, filepath.Join(prefix, "etc", "everest", "certs"), testpki.Options{})
	args := map[string]any{"certificate_type": "CSMS", "encoding": "PEM", "include_ocsp": false}
	retvals := map[string]json.RawMessage{}
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: brokerURL})
	ocpp := everesttest.NewCaller(t, brokerURL, everest.NewTopics("everest/", "evse_security", "main"), "ocpp")
	for _, pad := range []string{"false", "true"} {
		var errb lockedBuffer
		cmd := &exec.Cmd{Path: bin, Args: managerArgv(prefix, u.Port()), Stderr: &errb, Stdout: &errb,
			Env: append(os.Environ(), envPadResults+"="+pad)}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mgr.WaitReady(t, 20*time.Second)
		r, err := ocpp.Call("get_leaf_certificate_info", args)
		if err != nil || r.Error != nil {
			t.Fatalf("%s=%s: %v %+v\n%s", envPadResults, pad, err, r.Error, errb.String())
		}
		retvals[pad] = r.Retval
		padded := len(r.Payload) >= everest.DefaultResultPadding
		if padded != (pad == "true") {
			t.Errorf("%s=%s: a result of %d bytes", envPadResults, pad, len(r.Payload))
		}
		if logged := strings.Contains(errb.String(), "command results padded"); logged != (pad == "true") {
			t.Errorf("%s=%s: padding logged %v:\n%s", envPadResults, pad, logged, errb.String())
		}
		_ = cmd.Process.Signal(os.Interrupt)
		if code := waitExit(t, cmd, 15*time.Second); code != 0 {
			t.Errorf("exit %d:\n%s", code, errb.String())
		}
	}
	if !bytes.Equal(retvals["true"], retvals["false"]) {
		t.Errorf("padded retval\n%s\nunpadded\n%s", retvals["true"], retvals["false"])
	}
}
