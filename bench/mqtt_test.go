package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
)

// serveOn runs the standalone service for st on the broker at url until the benchmark ends.
func serveOn(b *testing.B, st *Store, url string) {
	b.Helper()
	serveWith(b, st, everest.Options{Broker: everest.Broker{URL: url}})
}

// serveWith is serveOn with the runner's options (Broker set).
func serveWith(b *testing.B, st *Store, opts everest.Options) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts.StartTimeout = 5 * time.Second
	r := everest.NewRunner(opts)
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, api.NewDispatcher(open(b, st))) }()
	select {
	case <-r.Ready():
	case err := <-done:
		b.Fatalf("service: %v", err)
	case <-time.After(10 * time.Second):
		b.Fatal("service not ready")
	}
	b.Cleanup(func() {
		cancel()
		<-done
	})
}

// mqttBrokers are the brokers of the MQTT benchmarks: the embedded one, and Debian's mosquitto
// with set_tcp_nodelay true (the setting the framework recommends; in its default configuration
// every call waits for delayed ACKs, see BenchmarkMosquittoFrameworkCall, and the ratio would
// say nothing about the service).
var mqttBrokers = []string{"embedded", "mosquitto"}

// brokerURL starts a broker of the kind for the benchmark.
func brokerURL(b *testing.B, kind string) string {
	b.Helper()
	if kind == "mosquitto" {
		return startMosquitto(b, "set_tcp_nodelay true\n")
	}
	broker, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { broker.Close() })
	return broker.URL()
}

// The call of the MQTT benchmarks: get_leaf_certificate_info, the call of every TLS handshake.
const (
	mqttCmd    = "get_leaf_certificate_info"
	mqttArgs   = `{"certificate_type":"V2G","encoding":"PEM","include_ocsp":false}`
	mqttOrigin = "bench_caller"
)

// mqttRequest is the Cmd message of the benchmarks' call.
func mqttRequest() []byte {
	return fmt.Appendf(nil, `{"msg_type":"Cmd","data":{"id":"bench","args":%s,"origin":%q}}`, mqttArgs, mqttOrigin)
}

// mqttReply is the CmdResult the service sends for mqttRequest on st, byte for byte: the echo
// sends the same bytes.
func mqttReply(b *testing.B, st *Store) []byte {
	b.Helper()
	res, err := api.NewDispatcher(open(b, st)).Call(context.Background(), mqttCmd, json.RawMessage(mqttArgs))
	if err != nil {
		b.Fatal(err)
	}
	msg, err := everest.EncodeResult("bench", everest.DefaultModuleID, res)
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// benchClient connects a plain MQTT client (paho, QoS 2, messages in order).
func benchClient(b *testing.B, url, id string) paho.Client {
	b.Helper()
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4))
	if t := cl.Connect(); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
		b.Fatalf("connect: %v", t.Error())
	}
	b.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

// roundTrips publishes req to the command topic b.N times, each time waiting for a message on
// the caller's response topic, the way a framework caller does (without waiting for its own
// PUBCOMP), and checks the first reply against want (nil: any).
func roundTrips(b *testing.B, url string, req, want []byte) {
	b.Helper()
	topics := everest.NewTopics("", "", "")
	caller := benchClient(b, url, mqttOrigin)
	got := make(chan []byte, 1)
	caller.Subscribe(topics.CmdResponse(mqttCmd, mqttOrigin), 2, func(_ paho.Client, m paho.Message) { got <- m.Payload() }).Wait()
	call := func() []byte {
		caller.Publish(topics.Cmd(mqttCmd), 2, false, req)
		select {
		case r := <-got:
			return r
		case <-time.After(5 * time.Second):
			b.Fatal("no reply")
			return nil
		}
	}
	if r := call(); want != nil && string(r) != string(want) {
		b.Fatalf("reply %s\nwant %s", r, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		call()
	}
}

// BenchmarkMQTTCommand is one get_leaf_certificate_info over MQTT (EVerest wire, QoS 2) to the
// service, from a plain client; BenchmarkMQTTEcho is the same client and broker with a bare
// responder that answers the same request with the same reply bytes: the difference is the
// service's own message handling.
func BenchmarkMQTTCommand(b *testing.B) {
	for _, kind := range mqttBrokers {
		b.Run("broker="+kind, func(b *testing.B) {
			forSizes(b, func(b *testing.B, st *Store) {
				url := brokerURL(b, kind)
				serveOn(b, st, url)
				roundTrips(b, url, mqttRequest(), mqttReply(b, st))
			})
		})
	}
}

// BenchmarkMQTTEcho is the floor of BenchmarkMQTTCommand (see there).
func BenchmarkMQTTEcho(b *testing.B) {
	st := generated(b, 10)
	for _, kind := range mqttBrokers {
		b.Run("broker="+kind, func(b *testing.B) {
			url := brokerURL(b, kind)
			topics := everest.NewTopics("", "", "")
			reply := mqttReply(b, st)
			echo := benchClient(b, url, "echo")
			echo.Subscribe(topics.Cmd(mqttCmd), 2, func(cl paho.Client, m paho.Message) {
				cl.Publish(topics.CmdResponse(mqttCmd, mqttOrigin), 2, false, reply)
			}).Wait()
			roundTrips(b, url, mqttRequest(), reply)
		})
	}
}

// echoModuleID names the echo responder of BenchmarkMQTTCommandVsEcho: as long as
// "evse_security", so its topics are as long as the service's.
const echoModuleID = "echo_security"

// BenchmarkMQTTCommandVsEcho alternates, call by call, one get_leaf_certificate_info to the
// service (2,000 leaves) and one call with the same payloads to a bare echo responder on the
// same broker, and reports both means and their ratio: measured in the same moments, the ratio
// holds on a busy machine, where two separate benchmarks would each see other load.
func BenchmarkMQTTCommandVsEcho(b *testing.B) {
	st := generated(b, 2000)
	for _, kind := range mqttBrokers {
		b.Run("broker="+kind, func(b *testing.B) {
			url := brokerURL(b, kind)
			serveOn(b, st, url)
			reply := mqttReply(b, st)
			svc, echo := everest.NewTopics("", "", ""), everest.NewTopics("", echoModuleID, "")
			responder := benchClient(b, url, "echo")
			responder.Subscribe(echo.Cmd(mqttCmd), 2, func(cl paho.Client, m paho.Message) {
				cl.Publish(echo.CmdResponse(mqttCmd, mqttOrigin), 2, false, reply)
			}).Wait()
			caller := benchClient(b, url, mqttOrigin)
			got := make(chan []byte, 1)
			for _, t := range []everest.Topics{svc, echo} {
				caller.Subscribe(t.CmdResponse(mqttCmd, mqttOrigin), 2, func(_ paho.Client, m paho.Message) { got <- m.Payload() }).Wait()
			}
			req := mqttRequest()
			call := func(t everest.Topics) time.Duration {
				start := time.Now()
				caller.Publish(t.Cmd(mqttCmd), 2, false, req)
				select {
				case r := <-got:
					if string(r) != string(reply) {
						b.Fatalf("reply %s\nwant %s", r, reply)
					}
				case <-time.After(5 * time.Second):
					b.Fatal("no reply")
				}
				return time.Since(start)
			}
			call(svc)
			call(echo)
			var cmdSum, echoSum time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				// Alternate which goes first, so neither always follows the other.
				if i%2 == 0 {
					cmdSum += call(svc)
					echoSum += call(echo)
				} else {
					echoSum += call(echo)
					cmdSum += call(svc)
				}
			}
			b.ReportMetric(float64(cmdSum.Microseconds())/float64(b.N), "command-µs")
			b.ReportMetric(float64(echoSum.Microseconds())/float64(b.N), "echo-µs")
			b.ReportMetric(float64(cmdSum)/float64(echoSum), "ratio")
		})
	}
}

// BenchmarkMQTTCaller is the same call made with evsesec's own caller (`evsesec call`), which
// also decodes the reply.
func BenchmarkMQTTCaller(b *testing.B) {
	st := generated(b, 10)
	url := brokerURL(b, "embedded")
	serveOn(b, st, url)
	ctx := context.Background()
	c, err := everest.NewCaller(ctx, everest.CallerOptions{Broker: everest.Broker{URL: url}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	args := json.RawMessage(mqttArgs)
	if _, err := c.Call(ctx, mqttCmd, args); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Call(ctx, mqttCmd, args); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessageHandling is the service's own work for one call, without the network: decode
// the Cmd, run the command through the dispatcher, encode the CmdResult.
func BenchmarkMessageHandling(b *testing.B) {
	st := generated(b, 10)
	d := api.NewDispatcher(open(b, st))
	req := mqttRequest()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cmd, err := everest.DecodeCmd(req)
		if err != nil {
			b.Fatal(err)
		}
		res, err := d.Call(ctx, mqttCmd, cmd.Args)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := everest.EncodeResult(cmd.ID, everest.DefaultModuleID, res); err != nil {
			b.Fatal(err)
		}
	}
}
