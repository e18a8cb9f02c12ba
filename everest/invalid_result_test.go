package everest_test

import (
	"context"
	"encoding/json"
	"testing"

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
			got := tap.call(t, w, tp, name, cmd.ID)
			var want []byte
			var err error
			if w.CarriesErrors() {
				_, want, err = w.Result(tp, name, cmd, nil, &everest.CmdError{Type: everest.HandlerException, Message: name + ": the handler returned invalid JSON"})
			} else {
				_, want, err = w.Result(tp, name, cmd, fallback, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("answer\n%s\nwant\n%s", got, want)
			}
		})
	}
}
