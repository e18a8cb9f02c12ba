package everest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
)

// invalidHandler answers every command with bytes that are not JSON.
type invalidHandler struct{}

func (invalidHandler) Call(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{"status":"Accepted"`), nil
}

// A result that is not JSON is answered, on every wire, exactly as a handler's HandlerException
// saying so: an error result where the wire carries errors, the command's fallback result where
// it does not. The wire finds it while encoding the result (the runner does not scan the result
// a second time before).
func TestInvalidHandlerResultOnEveryWire(t *testing.T) {
	url := everesttest.StartBroker(t).URL()
	const name = "install_ca_certificate"
	fallback := json.RawMessage(`"WriteError"`)
	for _, w := range everest.Wires() {
		t.Run(w.Name(), func(t *testing.T) {
			tp := w.Layout(everest.NewTopics("", "", ""))
			tap := newWireTap(t, url, "tap-"+w.Name(), "everest/#")
			s := startService(t, everest.Options{Broker: everest.Broker{URL: url}, Wire: w.Name(),
				Fallback: func(string) json.RawMessage { return fallback }}, invalidHandler{})
			defer s.stop(t)
			tap.next(t, tp.ModuleReady(), nil)
			cmd := everest.Cmd{ID: "id-1", Origin: "probe"}
			topic, msg, err := w.Call(tp, name, cmd.ID, cmd.Origin, json.RawMessage(`{"certificate_type":"CSMS"}`))
			if err != nil {
				t.Fatal(err)
			}
			if tok := tap.c.Publish(topic, 2, false, msg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
			var wantTopic string
			var want []byte
			if w.CarriesErrors() {
				wantTopic, want, err = w.Result(tp, name, cmd, nil, &everest.CmdError{Type: everest.HandlerException, Message: name + ": the handler returned invalid JSON"})
			} else {
				wantTopic, want, err = w.Result(tp, name, cmd, fallback, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := tap.next(t, wantTopic, func(p []byte) bool {
				r, ok, _ := w.DecodeResult(tp, wantTopic, p)
				return ok && r.ID == cmd.ID
			})
			if string(got) != string(want) {
				t.Errorf("answer\n%s\nwant\n%s", got, want)
			}
		})
	}
}
