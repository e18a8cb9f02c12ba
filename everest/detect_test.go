package everest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
)

// echoHandler answers every command with its arguments, or fails the command "fail": a handler
// without a store, so the wire is tested alone.
type echoHandler struct{}

func (echoHandler) Call(_ context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	if name == "fail" {
		return nil, errors.New("it failed")
	}
	return args, nil
}

// retainedTopicsCome bounds the runner's wait for retained topics that the manager does publish:
// long enough never to run out before they come, which would add requests in the other forms
// (harmless on the wire, but not what these tests check).
const retainedTopicsCome = 20 * time.Second

// A runner told nothing ("auto") under a fake manager of each older generation finds the wire
// out from the config answer, with and without the retained topics, and only then reports
// ready in the generation's form; it never sends a v0.25 message, and calls reach the handler.
func TestDetectUnderLegacyManagers(t *testing.T) {
	for _, c := range []struct {
		framework  string
		noRetained bool
		// late: the retained topics come only after the module started, as from the real
		// managers, whose MQTT client sends them slowly.
		late bool
		wire string
		// requests are the config request topics and whether each is enveloped.
		requests string
	}{
		{everesttest.Framework024, false, false, everest.WireV022, "config/request modules/evse_security/get_config"},
		{everesttest.Framework024, true, true, everest.WireV022, "config/request modules/evse_security/get_config"},
		{everesttest.Framework024, true, false, everest.WireV022, "config/request(enveloped) config/request modules/evse_security/get_config"},
		{everesttest.Framework021, false, false, everest.WireV019, "config/request modules/evse_security/get_config"},
		{everesttest.Framework020, false, false, everest.WireV019, "modules/evse_security/get_config"},
		{everesttest.Framework019, true, false, everest.WireV019, "config/request(enveloped) config/request modules/evse_security/get_config"},
	} {
		name := c.framework
		if c.late {
			name += "/retained topics late"
		} else if c.noRetained {
			name += "/no retained topics"
		}
		t.Run(name, func(t *testing.T) {
			url := everesttest.StartBroker(t).URL()
			mgr := everesttest.StartLegacyManager(t, everesttest.LegacyManagerOptions{URL: url, Framework: c.framework, NoRetained: c.noRetained, EtcDir: "/x/etc/everest"})
			var got everest.ModuleConfig
			r := everest.NewRunner(everest.Options{Broker: everest.Broker{URL: url}, Wire: everest.WireAuto, Logger: testLogger(),
				Fallback: func(string) json.RawMessage { return json.RawMessage(`"Failed"`) }})
			if !c.noRetained || c.late {
				// The retained topics come: the wait for them must not decide the requests.
				everest.SetRetainedWait(r, retainedTopicsCome)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- r.RunModule(ctx, func(_ context.Context, mc everest.ModuleConfig) (everest.Handler, error) {
					got = mc
					return echoHandler{}, nil
				})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			if c.late {
				mgr.PublishRetained()
			}
			if ready := mgr.WaitReady(t, 20*time.Second); ready != "true" {
				t.Errorf("ready %s", ready)
			}
			if r.Wire() == nil || r.Wire().Name() != c.wire || got.Wire != c.wire {
				t.Fatalf("wire %v (config says %q), want %s", r.Wire(), got.Wire, c.wire)
			}
			if len(got.Params) != 9 || (!c.noRetained && got.EtcDir != "/x/etc/everest") {
				// (late retained settings may come after the config answer: then the etc dir
				// follows the prefix)
				t.Errorf("config %+v", got)
			}
			var reqs []string
			for _, m := range mgr.ConfigRequests() {
				s := strings.TrimPrefix(m.Topic, "everest/")
				if strings.Contains(m.Payload, "msg_type") {
					s += "(enveloped)"
				}
				reqs = append(reqs, s)
			}
			if strings.Join(reqs, " ") != c.requests {
				t.Errorf("config requests %q, want %q", reqs, c.requests)
			}
			for _, m := range mgr.Log() {
				if strings.Contains(m.Payload, "msg_type") && m.Topic != "everest/config/request" {
					t.Errorf("a v0.25 message on a %s wire: %s %s", c.framework, m.Topic, m.Payload)
				}
			}
			caller := everesttest.NewLegacyCaller(t, url, "everest/modules/evse_security/impl/main", "probe")
			if res, err := caller.Call("anything", "id-1", map[string]any{"b": 2, "a": 1}); err != nil ||
				res.Payload != `{"data":{"id":"id-1","origin":"evse_security","retval":{"a":1,"b":2}},"name":"anything","type":"result"}` {
				t.Errorf("call: %+v %v", res, err)
			}
			wantFail := `{"data":{"id":"id-2","origin":"evse_security","retval":"Failed"},"name":"fail","type":"result"}`
			if c.wire == everest.WireV022 {
				wantFail = `{"data":{"error":{"__everest__error_msg":"it failed","__everest__error_type":"HandlerException","event":"HandlerException","msg":"it failed"},"id":"id-2","origin":"evse_security"},"name":"fail","type":"result"}`
			}
			if res, err := caller.Call("fail", "id-2", nil); err != nil || res.Payload != wantFail {
				t.Errorf("failing call: %+v %v\nwant %s", res, err, wantFail)
			}
			if err := r.PublishVar(everest.StoreUpdateVar, map[string]string{"operation": "Deleted", "leaf_certificate_type": "V2G"}); err != nil {
				t.Fatal(err)
			}
			if v, err := caller.WaitVar(10 * time.Second); err != nil || v.Payload != `{"data":{"leaf_certificate_type":"V2G","operation":"Deleted"},"name":"certificate_store_update"}` {
				t.Errorf("var %+v %v", v, err)
			}
			if mgr.Crashed() != "" {
				t.Errorf("the manager would have died: %s", mgr.Crashed())
			}
		})
	}
}

// Against the v0.25 fake manager, "auto" sends only the enveloped request (the retained
// topics are enveloped) and reports ready in the envelope.
func TestDetectUnderV025Manager(t *testing.T) {
	url := everesttest.StartBroker(t).URL()
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: url, EtcDir: "/y/etc/everest"})
	r := everest.NewRunner(everest.Options{Broker: everest.Broker{URL: url}, Wire: everest.WireAuto, Logger: testLogger()})
	everest.SetRetainedWait(r, retainedTopicsCome)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.RunModule(ctx, func(context.Context, everest.ModuleConfig) (everest.Handler, error) { return echoHandler{}, nil })
	}()
	defer func() {
		cancel()
		<-done
	}()
	if got := mgr.WaitReady(t, 20*time.Second); got != `{"msg_type":"ModuleReady","data":true}` {
		t.Errorf("ready %s", got)
	}
	if reqs := mgr.ConfigRequests(); len(reqs) != 1 || !strings.Contains(reqs[0], `"msg_type":"GetConfig"`) {
		t.Errorf("config requests %q", reqs)
	}
	if r.Wire() != everest.V025 {
		t.Errorf("wire %v", r.Wire())
	}
	caller := everesttest.NewCaller(t, url, r.Topics(), "ocpp")
	if res, err := caller.Call("x", map[string]int{"a": 1}); err != nil || string(res.Retval) != `{"a":1}` {
		t.Errorf("call %+v %v", res, err)
	}
}
