package everest

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Finding out which wire the manager speaks (Options.Wire "auto").
//
// The one rule: nothing that differs between the generations — the ready above all — is sent
// before the manager has told the wire by answering a config request. A v0.25 ready kills a
// v0.24 manager (it reads a bare bool), and a bare ready is not what a v0.25 manager waits for.
// The config requests themselves are safe in every form: each manager listens for its own and
// ignores the others (a v0.24 manager logs an error for an enveloped one, nothing more; v0.25
// drops a bare one as external MQTT; nobody but v0.19–v0.21 listens on get_config).
//
// The evidence, strongest first:
//
//  1. the manager's command line (cmd/evsesec): --conf and no MQTT flags is v0.17–v0.18, whose
//     modules read the config file and send no config request at all;
//  2. the topic and shape of the answer to the config request: P modules/<id>/config is
//     v0.19–v0.21; P modules/<id>/response with the {"msg_type","data"} envelope is v0.25,
//     without it v0.22–v0.24;
//  3. the retained topics the manager publishes before it starts the modules, which decide which
//     requests are sent: P settings and P module_names enveloped is v0.25, bare is v0.19–v0.24;
//     P module_provides exists on v0.19–v0.20 only. With no retained topic (a standalone module
//     started after they were cleared), every form is sent, the v0.25 one first.
//
// Until an answer comes, the module keeps asking every ConfigRetry, as it does on a known wire;
// the charger is never left with a module that reported ready in the wrong form.

// retainedWait bounds the wait for the first retained topic before the first config request.
// The C++ managers publish them just before they start the modules, but their MQTT client sends
// one about every 44 ms, so the module often subscribes before the broker has them: they then
// come as ordinary messages, P interfaces first. (Runner.retainedWait is this, except in tests.)
const retainedWait = 1500 * time.Millisecond

// configAnswer is a message on one of the config answer topics.
type configAnswer struct {
	topic   string
	payload []byte
}

// shape is what a retained message looked like.
type shape int

const (
	shapeNone      shape = iota // not seen (or cleared)
	shapeEnveloped              // {"msg_type":...,"data":...}: v0.25
	shapeBare                   // any other JSON: v0.24 and older
)

// retainedHints collects what the retained topics said.
type retainedHints struct {
	mu             sync.Mutex
	settings       shape
	moduleNames    shape
	interfaces     shape
	moduleProvides bool

	once sync.Once
	seen chan struct{} // closed at the first hint
}

func newRetainedHints() *retainedHints { return &retainedHints{seen: make(chan struct{})} }

// note records the shape of a message on a retained topic.
func (h *retainedHints) note(payload []byte, dst *shape) {
	s := shapeOf(payload)
	if s == shapeNone {
		return
	}
	h.mu.Lock()
	*dst = s
	h.mu.Unlock()
	h.once.Do(func() { close(h.seen) })
}

func shapeOf(payload []byte) shape {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || !json.Valid(p) {
		return shapeNone
	}
	var env struct {
		MsgType *string         `json:"msg_type"`
		Data    json.RawMessage `json:"data"`
	}
	if json.Unmarshal(p, &env) == nil && env.MsgType != nil && env.Data != nil {
		return shapeEnveloped
	}
	return shapeBare
}

// verdict says which generations the retained topics leave open, and why.
func (h *retainedHints) verdict() (wires []Wire, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.settings == shapeEnveloped || h.moduleNames == shapeEnveloped || h.interfaces == shapeEnveloped:
		return []Wire{V025}, "the manager's retained topics are enveloped"
	case h.moduleProvides:
		return []Wire{V019}, "the manager publishes the retained module_provides (framework v0.19, v0.20)"
	case h.settings == shapeBare || h.moduleNames == shapeBare || h.interfaces == shapeBare:
		return []Wire{V022, V019}, "the manager's retained topics are bare JSON (framework v0.19 to v0.24)"
	}
	return []Wire{V025, V022, V019}, "the manager published no retained topics"
}

// configResponseTopics are the config answer topics to listen on: the wire's, or while finding
// out, every generation's.
func (r *Runner) configResponseTopics() []string {
	if w := r.Wire(); w != nil {
		if _, _, resp := w.ConfigRequest(r.topics); resp != "" {
			return []string{resp}
		}
		return nil
	}
	return []string{r.topics.ConfigResponse(), r.topics.ModuleConfigTopic()}
}

// askWith is the wires whose config request to send: the wire's, or the ones the retained
// topics leave open.
func (r *Runner) askWith() []Wire {
	if w := r.Wire(); w != nil {
		return []Wire{w}
	}
	wires, why := r.hint.verdict()
	names := make([]string, len(wires))
	for i, w := range wires {
		names[i] = w.Name()
	}
	r.log.Info("asking the manager for the config in the forms of every EVerest wire still possible", "wires", names, "why", why)
	return wires
}

// wireOfAnswer decides the wire from a config answer's topic and shape; nil for a message that
// is not an answer (a retained leftover, another module's traffic).
func (r *Runner) wireOfAnswer(a configAnswer) (Wire, string) {
	switch a.topic {
	case r.topics.ModuleConfigTopic():
		return V019, "the manager answered on " + a.topic + " (framework v0.19 to v0.21)"
	case r.topics.ConfigResponse():
		switch shapeOf(a.payload) {
		case shapeEnveloped:
			return V025, "the manager's config answer is enveloped (framework v0.25)"
		case shapeBare:
			return V022, "the manager's config answer is bare JSON on " + a.topic + " (framework v0.22 to v0.24)"
		}
	}
	return nil, ""
}

// probeTopic is a topic of this client's own, outside the everest prefix: a message published
// to it comes back after the retained messages of the subscriptions made before it.
func (r *Runner) probeTopic() string { return "evsesec/probe/" + r.opts.ClientID }

func (r *Runner) onProbe(string, []byte, bool) {
	select {
	case r.probeCh <- struct{}{}:
	default:
	}
}

func (r *Runner) onModuleProvides(_ string, payload []byte, _ bool) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return
	}
	r.hint.mu.Lock()
	r.hint.moduleProvides = true
	r.hint.mu.Unlock()
	r.hint.once.Do(func() { close(r.hint.seen) })
}

func (r *Runner) onInterfaces(_ string, payload []byte, _ bool) {
	r.hint.note(payload, &r.hint.interfaces)
}

// onInterfaceDefinition keeps the manager's definition of evse_security: it says which
// release's interface the callers speak. The v0.25 manager wraps it in the envelope.
func (r *Runner) onInterfaceDefinition(_ string, payload []byte, _ bool) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || !json.Valid(p) {
		return
	}
	if shapeOf(p) == shapeEnveloped {
		if e, err := Decode(p); err == nil {
			p = e.Data
		}
	}
	def := json.RawMessage(append([]byte(nil), p...))
	r.ifaceDef.Store(&def)
}

// awaitRetained waits for the hints from the manager's retained topics, at most r.retainedWait:
// first until every message the broker had retained has been delivered (a message published to
// the probe topic comes back after them: the broker delivers a client's messages in order), then,
// if there was none, for the first one the manager is still sending.
func (r *Runner) awaitRetained(ctx context.Context) {
	c := r.conn.Load()
	if c == nil {
		return
	}
	c.publishAsync(r.probeTopic(), []byte("probe"))
	timer := time.NewTimer(r.retainedWait)
	defer timer.Stop()
	// Not the first hint: the subscriptions are made one after the other, so P settings can
	// arrive before the subscription of P module_provides has delivered its retained message;
	// the probe comes back only after all of them.
	select {
	case <-r.probeCh:
	case <-timer.C:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-r.hint.seen:
	case <-timer.C:
		r.log.Info("no retained topic from the manager", "waited", r.retainedWait)
	case <-ctx.Done():
	}
}
