package bench

import (
	"encoding/json"
	"fmt"
	"testing"

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
				if _, err := c.call(mqttCmd, fmt.Sprint(i), args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
