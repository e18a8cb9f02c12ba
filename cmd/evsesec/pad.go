package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/evsesec/evsesec/everest"
)

// envPadResults switches the result padding on in module mode (everest.Options.PadResults),
// where the manager's command line has no room for a flag of ours; `serve` has --pad-results.
const envPadResults = "EVSESEC_MQTT_PAD_RESULTS"

// parsePadResults reads a value of EVSESEC_MQTT_PAD_RESULTS or --pad-results: "", "false" and "0"
// are off (0), "true" is everest.DefaultResultPadding, and a decimal number is that many bytes,
// from everest.MinResultPadding to everest.MaxResultPadding.
func parsePadResults(v string) (int, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "false", "0":
		return 0, nil
	case "true":
		return everest.DefaultResultPadding, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is neither true, false nor a size in bytes", v)
	case n < 0:
		return 0, fmt.Errorf("%q: a size cannot be negative", v)
	case n < everest.MinResultPadding:
		return 0, fmt.Errorf("%q: below %d bytes a result stays within one TCP segment, so padding changes nothing; true pads to %d", v, everest.MinResultPadding, everest.DefaultResultPadding)
	case n > everest.MaxResultPadding:
		return 0, fmt.Errorf("%q: more than %d bytes (EVerest's MQTT-C callers, framework v0.17 to v0.24, cannot receive a message over 500 KiB)", v, everest.MaxResultPadding)
	}
	return n, nil
}

// padResultsFromEnv reads module mode's padding from the environment. An unusable value is
// logged and leaves the padding off, the wire unchanged: after its start the module never exits
// on its own, and a module that exits at start takes the manager's whole system down.
func padResultsFromEnv(log *slog.Logger) int {
	v, set := os.LookupEnv(envPadResults)
	if !set {
		return 0
	}
	n, err := parsePadResults(v)
	if err != nil {
		log.Error("ignoring "+envPadResults+"; command results are not padded", "err", err)
		return 0
	}
	logPadding(log, n, envPadResults)
	return n
}

// logPadding says once, at start, that results are padded and why: the option changes the bytes
// on the wire and costs bandwidth, so whoever reads the log must be able to tell.
func logPadding(log *slog.Logger, n int, setBy string) {
	if n == 0 {
		return
	}
	log.Info("command results padded with trailing JSON whitespace", "min_bytes", n, "set_by", setBy,
		"why", "with mosquitto's set_tcp_nodelay false a short result waits about 40 ms in the broker for the caller's delayed ACK; one larger than a TCP segment is sent at once",
		"cost", "every result carries the padding to the broker and every subscriber of its topic; set_tcp_nodelay true or the broker's Unix socket make it unnecessary")
}

// padFlag is --pad-results of `serve`: `--pad-results` pads to everest.DefaultResultPadding,
// `--pad-results=N` to N bytes.
type padFlag int

func (p *padFlag) String() string {
	if p == nil || *p == 0 {
		return "false"
	}
	return strconv.Itoa(int(*p))
}

func (p *padFlag) Set(v string) error {
	n, err := parsePadResults(v)
	if err != nil {
		return err
	}
	*p = padFlag(n)
	return nil
}

// IsBoolFlag lets --pad-results stand alone, as true.
func (p *padFlag) IsBoolFlag() bool { return true }
