package everest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
)

// fixedHandler answers every command with the same result, and fail with an error.
type fixedHandler struct{}

var fixedRetval = json.RawMessage(`{"status":"Accepted","info":{"certificate_type":"CSMS","key":"/etc/everest/certs/client/csms/CSMS_LEAF.key"}}`)

func (fixedHandler) Call(_ context.Context, name string, _ json.RawMessage) (json.RawMessage, error) {
	if name == "install_ca_certificate" {
		return nil, &everest.CmdError{Type: everest.HandlerException, Message: "refused"}
	}
	return fixedRetval, nil
}

// wireTap is a raw MQTT client on every topic of a module: what exactly the broker delivers.
type wireTap struct {
	c    paho.Client
	msgs chan paho.Message
}

func newWireTap(t *testing.T, url, id, filter string) *wireTap {
	t.Helper()
	w := &wireTap{msgs: make(chan paho.Message, 64)}
	po := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).SetAutoReconnect(false)
	w.c = paho.NewClient(po)
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("tap connect: %v", tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(100) })
	if tok := w.c.Subscribe(filter, 2, func(_ paho.Client, m paho.Message) { w.msgs <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("tap subscribe: %v", tok.Error())
	}
	return w
}

// next returns the next message on topic, skipping others.
func (w *wireTap) next(t *testing.T, topic string, accept func([]byte) bool) []byte {
	t.Helper()
	deadline := time.After(everesttest.CallTimeout)
	for {
		select {
		case m := <-w.msgs:
			if m.Topic() == topic && (accept == nil || accept(m.Payload())) {
				return m.Payload()
			}
		case <-deadline:
			t.Fatalf("nothing on %s", topic)
		}
	}
}

// call publishes a call of command name from caller "probe" with id on wire w (layout tp) and
// returns the result message the broker delivers for it.
func (w *wireTap) call(t *testing.T, wire everest.Wire, tp everest.Topics, name, id string) []byte {
	t.Helper()
	topic, msg, err := wire.Call(tp, name, id, "probe", json.RawMessage(`{"certificate_type":"CSMS"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tok := w.c.Publish(topic, 2, false, msg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	resultTopic, _, _ := wire.Result(tp, name, everest.Cmd{ID: id, Origin: "probe"}, nil, nil)
	return w.next(t, resultTopic, func(p []byte) bool {
		r, ok, _ := wire.DecodeResult(tp, resultTopic, p)
		return ok && r.ID == id
	})
}

// wireRun is what one runner sent for a call, an error call, a variable and its ready signal.
type wireRun struct {
	result, errResult, variable, ready []byte
}

// runWire serves fixedHandler on wire w with the padding given, makes both calls and publishes
// a variable, and returns the payloads as the broker delivered them.
func runWire(t *testing.T, url string, w everest.Wire, pad int) wireRun {
	t.Helper()
	tp := w.Layout(everest.NewTopics("", "", ""))
	tap := newWireTap(t, url, fmt.Sprintf("tap-%d", pad), "everest/#")
	s := startService(t, everest.Options{Broker: everest.Broker{URL: url}, Wire: w.Name(), PadResults: pad}, fixedHandler{})
	defer s.stop(t)
	var run wireRun
	run.ready = tap.next(t, tp.ModuleReady(), nil)
	run.result = tap.call(t, w, tp, "get_leaf_certificate_info", "id-1")
	run.errResult = tap.call(t, w, tp, "install_ca_certificate", "id-2")
	if err := s.runner.PublishVar(everest.StoreUpdateVar, map[string]string{"operation": "Installed", "ca_certificate_type": "CSMS"}); err != nil {
		t.Fatal(err)
	}
	varTopic, _, _ := w.Var(tp, everest.StoreUpdateVar, nil)
	run.variable = tap.next(t, varTopic, nil)
	return run
}

// Padding switched on pads every command result on every wire, error results and fallback
// results included, to at least the size asked, with whitespace after the very bytes the
// unpadded runner sends, which decode to the same value; variables and the ready signal are
// never padded. Without padding the runner sends exactly what the wire encodes (the wires'
// golden tests hold those bytes to the real frameworks').
func TestPadResultsOnEveryWire(t *testing.T) {
	const pad = everest.DefaultResultPadding
	for _, w := range everest.Wires() {
		t.Run(w.Name(), func(t *testing.T) {
			url := everesttest.StartBroker(t).URL()
			plain := runWire(t, url, w, 0)
			padded := runWire(t, url, w, pad)

			tp := w.Layout(everest.NewTopics("", "", ""))
			_, want, err := w.Result(tp, "get_leaf_certificate_info", everest.Cmd{ID: "id-1", Origin: "probe"}, fixedRetval, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain.result, want) {
				t.Errorf("unpadded result\n%s\nwant the wire's own bytes\n%s", plain.result, want)
			}
			for _, c := range []struct {
				what          string
				plain, padded []byte
			}{{"result", plain.result, padded.result}, {"error result", plain.errResult, padded.errResult}} {
				if len(c.padded) < pad {
					t.Errorf("%s: %d bytes, want at least %d", c.what, len(c.padded), pad)
				}
				if !bytes.HasPrefix(c.padded, c.plain) || len(bytes.Trim(c.padded[len(c.plain):], " ")) != 0 {
					t.Errorf("%s: not the unpadded message followed by spaces: %.200q", c.what, c.padded)
				}
				var a, b any
				if err := errors.Join(json.Unmarshal(c.plain, &a), json.Unmarshal(c.padded, &b)); err != nil || !reflect.DeepEqual(a, b) {
					t.Errorf("%s: padded decodes to another value (%v)", c.what, err)
				}
			}
			if !bytes.Equal(padded.variable, plain.variable) || !bytes.Equal(padded.ready, plain.ready) {
				t.Errorf("variable or ready padded: %d and %d bytes, unpadded %d and %d", len(padded.variable), len(padded.ready), len(plain.variable), len(plain.ready))
			}
		})
	}
}

// Padding on a wire of framework v0.17 to v0.24 is logged once, at ready, with what it cannot do
// there; on v0.25, or without padding, nothing is said.
func TestPaddingOnSharedTopicWarned(t *testing.T) {
	url := everesttest.StartBroker(t).URL()
	const warning = "removes only one of a call's two waits"
	for _, w := range everest.Wires() {
		for _, pad := range []int{0, everest.DefaultResultPadding} {
			t.Run(fmt.Sprintf("%s/pad=%d", w.Name(), pad), func(t *testing.T) {
				var log syncBuffer
				s := startService(t, everest.Options{Broker: everest.Broker{URL: url}, Wire: w.Name(), PadResults: pad,
					Logger: bufferLogger(&log)}, fixedHandler{})
				s.stop(t)
				want := pad > 0 && w.Name() != everest.WireV025
				if got := strings.Count(log.String(), warning); got != map[bool]int{false: 0, true: 1}[want] {
					t.Errorf("warning logged %d times, want it %v\n%s", got, want, log.String())
				}
			})
		}
	}
}
