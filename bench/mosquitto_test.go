package bench

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
)

// startMosquitto starts Debian's mosquitto on a free loopback port with the given config lines
// (none: its default configuration, which leaves Nagle's algorithm on for its sockets) and
// returns its URL; it is stopped by its PID when the benchmark ends.
func startMosquitto(b *testing.B, config string) string {
	b.Helper()
	return everesttest.StartMosquittoConfig(b, config)
}

// mosquittoRuns are the cases of BenchmarkMosquittoFrameworkCall: mosquitto's default
// configuration (Nagle on the broker's sockets) with the framework-like caller; the same with the
// module padding its results (EVSESEC_MQTT_PAD_RESULTS=true), so that the broker sends each at
// once; the same unpadded with a caller that acknowledges at once, which leaves only the module's
// leg to wait on delayed ACKs; and set_tcp_nodelay true, the setting the framework's sources
// recommend.
var mosquittoRuns = []struct {
	name, config     string
	padResults       int
	callerAcksAtOnce bool
}{
	{"default", "", 0, false},
	{"default-padded", "", everest.DefaultResultPadding, false},
	{"default-caller-acks-at-once", "", 0, true},
	{"nodelay", "set_tcp_nodelay true\n", 0, false},
}

// BenchmarkMosquittoFrameworkCall is one get_leaf_certificate_info from a caller that behaves
// like the EVerest framework's (fwCaller: QoS 2, TCP_NODELAY on its socket, results handed over
// at PUBREL) to the service, through Debian's mosquitto, one call right after the other.
func BenchmarkMosquittoFrameworkCall(b *testing.B) {
	st := generated(b, 10)
	for _, run := range mosquittoRuns {
		b.Run("config="+run.name, func(b *testing.B) {
			url := startMosquitto(b, run.config)
			serveWith(b, st, everest.Options{Broker: everest.Broker{URL: url}, PadResults: run.padResults})
			c, err := dialFWCaller(url, everest.NewTopics("", "", ""), "bench_caller")
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			if run.callerAcksAtOnce {
				if err := c.ackAtOnce(); err != nil {
					b.Fatal(err)
				}
			}
			args := json.RawMessage(mqttArgs)
			if _, err := c.call(mqttCmd, "warm", args); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				msg, err := c.call(mqttCmd, fmt.Sprint(i), args)
				if err != nil {
					b.Fatal(err)
				}
				c.release(msg)
			}
		})
	}
}

// BenchmarkMosquittoPaddedVsNodelay measures the same call as BenchmarkMosquittoFrameworkCall
// on two mosquittos at once, call by call in turn: one in its default configuration with the
// module padding its results, one with set_tcp_nodelay true and no padding. Measured in the same
// moments, their ratio holds on a machine whose speed drifts between the runs of
// BenchmarkMosquittoFrameworkCall's cases. The report's target 3 is this ratio.
func BenchmarkMosquittoPaddedVsNodelay(b *testing.B) {
	st := generated(b, 10)
	type side struct {
		c   *fwCaller
		sum time.Duration
	}
	dial := func(config string, pad int) *side {
		url := startMosquitto(b, config)
		serveWith(b, st, everest.Options{Broker: everest.Broker{URL: url}, PadResults: pad})
		c, err := dialFWCaller(url, everest.NewTopics("", "", ""), "bench_caller")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.close)
		return &side{c: c}
	}
	padded, nodelay := dial("", everest.DefaultResultPadding), dial("set_tcp_nodelay true\n", 0)
	args := json.RawMessage(mqttArgs)
	call := func(s *side, id string) {
		start := time.Now()
		msg, err := s.c.call(mqttCmd, id, args)
		if err != nil {
			b.Fatal(err)
		}
		s.sum += time.Since(start)
		s.c.release(msg)
	}
	call(padded, "warm")
	call(nodelay, "warm")
	padded.sum, nodelay.sum = 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, so neither always follows the other.
		first, second := padded, nodelay
		if i%2 == 1 {
			first, second = nodelay, padded
		}
		call(first, fmt.Sprint(i))
		call(second, fmt.Sprint(i))
	}
	b.ReportMetric(float64(padded.sum.Microseconds())/float64(b.N), "padded-µs")
	b.ReportMetric(float64(nodelay.sum.Microseconds())/float64(b.N), "nodelay-µs")
	b.ReportMetric(float64(padded.sum)/float64(nodelay.sum), "ratio")
}
