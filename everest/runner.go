package everest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Handler runs one command: its name and JSON argument object in, its JSON result out (nil or
// JSON null for commands without a result). It is called from several goroutines at once. An
// error becomes the framework's error reply (see ErrorTypeOf). The api package's Dispatcher is a
// Handler.
type Handler interface {
	Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error)
}

// SetupFunc builds the Handler once the manager's config is known (module mode). ctx ends when
// the runner stops, so goroutines it starts (the store's maintenance loop) can follow it. An
// error does not stop the module: every command is then answered with a HandlerException
// carrying it, and the module still reports ready, so EVerest keeps running and the reason is
// in every caller's log.
type SetupFunc func(ctx context.Context, cfg ModuleConfig) (Handler, error)

// Defaults of Options.
const (
	DefaultMaxConcurrentCalls = 16
	DefaultConfigRetry        = 5 * time.Second
	DefaultShutdownGrace      = 5 * time.Second
)

// Options configure a Runner. Zero values take the defaults.
type Options struct {
	// Broker is the MQTT broker to connect to.
	Broker Broker
	// Prefix is the everest prefix (default "everest/"); ModuleID the module's id (default
	// "evse_security"); Impl the implementation id (default "main").
	Prefix, ModuleID, Impl string
	// ClientID is the MQTT client id; default "<module id>-<random>".
	ClientID string
	// InstallPrefix is EVerest's installation prefix (the manager's --prefix). In module mode the
	// etc directory comes from the manager's retained settings if they arrive in time, else from
	// EtcDirOf(InstallPrefix).
	InstallPrefix string
	// Logger receives the runner's log; nil discards it.
	Logger *slog.Logger
	// MaxConcurrentCalls bounds the commands run at once (default 16). Every call runs in its own
	// goroutine, so one slow command never holds up the others.
	MaxConcurrentCalls int
	// ConfigRetry is how long to wait for the manager's config before asking again (default 5 s,
	// the framework's timeout). Module mode asks until it is answered.
	ConfigRetry time.Duration
	// ConnectTimeout bounds one connection attempt (default 5 s).
	ConnectTimeout time.Duration
	// StartTimeout is how long the first connection is retried before the runner gives up;
	// zero means a single attempt.
	StartTimeout time.Duration
	// ReconnectInterval is the longest pause between reconnection attempts (default 2 s).
	ReconnectInterval time.Duration
	// ShutdownGrace is how long running calls may finish after the context ends (default 5 s).
	ShutdownGrace time.Duration
	// OnConnection, when set, is told of every connection (true) and every lost connection
	// (false) to the broker (metrics). It is called from the MQTT client and must not block.
	OnConnection func(connected bool)

	// Wire is the wire to speak (a name WireByName takes). Empty means v0.25, the current
	// framework's; "auto" finds out what the manager speaks from its retained topics and its
	// answer to the config request (see detect.go) before anything that differs between the
	// generations is sent.
	Wire string
	// WireReason says why Wire was chosen (for the log), e.g. "the manager's command line".
	WireReason string
	// FileConfig is the module config for a wire whose manager sends none over MQTT (v0.17 and
	// v0.18: the module reads the config file, see ReadConfigFile). Module mode needs it on
	// that wire.
	FileConfig *ModuleConfig
	// Fallback returns the result a failed call of command name is answered with on a wire
	// whose callers cannot receive an error result (v0.17 to v0.21): a value of the command's
	// result type that means failure. nil answers JSON null.
	Fallback func(name string) json.RawMessage
	// PadResults, when positive, is the least size in bytes of every command result's payload
	// (results and error results, on every wire): a shorter one is followed by JSON whitespace
	// up to it, so that a broker with Nagle's algorithm on sends it at once (see pad.go). Values
	// above MaxResultPadding are taken as MaxResultPadding. Zero, the default, leaves every
	// byte as the wire encodes it. Variables, the ready signal, the metadata and the config
	// request are never padded.
	PadResults int
}

// Runner serves one module implementation on the EVerest wire. A Runner is used once: either
// RunModule (started by the EVerest manager) or Serve (the standalone service).
type Runner struct {
	opts   Options
	topics Topics
	log    *slog.Logger
	// wire is the wire spoken; nil until the detection has decided (Options.Wire "auto").
	wire atomic.Pointer[Wire]
	hint *retainedHints
	// retainedWait is the constant retainedWait; tests in which the retained topics come set a
	// bound that can never decide the outcome (export_test.go).
	retainedWait time.Duration

	conn atomic.Pointer[conn]
	// out publishes what the message callbacks send (sender.go); set while run runs.
	out *sender

	handler    Handler
	handlerSet chan struct{} // closed once handler is set
	sem        chan struct{}

	mu      sync.Mutex
	closing bool
	calls   sync.WaitGroup // command goroutines
	bg      sync.WaitGroup // (re)connection goroutines

	ctx         context.Context // the run's context
	callCtx     context.Context // outlives ctx by the shutdown grace
	cancelCalls context.CancelFunc

	fetchConfig    bool
	subscribed     chan struct{}
	subscribedOnce sync.Once
	configCh       chan configAnswer
	probeCh        chan struct{}
	etcDir         atomic.Pointer[string] // from the manager's retained settings
	readySent      atomic.Bool
	readyCh        chan struct{}
	globalReady    atomic.Bool
	cmdsSubscribed atomic.Bool
	moduleNameSeen atomic.Pointer[string]
	ifaceDef       atomic.Pointer[json.RawMessage] // the manager's evse_security definition
	started        atomic.Bool
}

// NewRunner returns a runner with opts.
func NewRunner(opts Options) *Runner {
	if opts.ModuleID == "" {
		opts.ModuleID = DefaultModuleID
	}
	if opts.ClientID == "" {
		opts.ClientID = opts.ModuleID + "-" + randomID(4)
	}
	if opts.MaxConcurrentCalls <= 0 {
		opts.MaxConcurrentCalls = DefaultMaxConcurrentCalls
	}
	if opts.ConfigRetry <= 0 {
		opts.ConfigRetry = DefaultConfigRetry
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	opts.PadResults = min(max(opts.PadResults, 0), MaxResultPadding)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		opts:         opts,
		topics:       NewTopics(opts.Prefix, opts.ModuleID, opts.Impl),
		log:          log,
		handlerSet:   make(chan struct{}),
		sem:          make(chan struct{}, opts.MaxConcurrentCalls),
		subscribed:   make(chan struct{}),
		configCh:     make(chan configAnswer, 4),
		probeCh:      make(chan struct{}, 1),
		hint:         newRetainedHints(),
		retainedWait: retainedWait,
		readyCh:      make(chan struct{}),
	}
	if opts.Wire == "" {
		r.setWire(V025)
	} else if w, err := WireByName(opts.Wire); err == nil && w != nil {
		r.setWire(w)
		// The layout is fixed here: the one wire with its own layout (v0.17, v0.18) is known
		// from the command line, never found out over MQTT.
		r.topics = w.Layout(r.topics)
	} else if err != nil {
		// A name the command line has already checked; fall back to finding out, which never
		// sends a message of the wrong generation.
		log.Warn("unknown EVerest wire; finding out which one the manager speaks", "wire", opts.Wire)
	}
	return r
}

// setWire fixes the wire spoken from now on.
func (r *Runner) setWire(w Wire) { r.wire.Store(&w) }

// Wire is the wire spoken; nil while it is still being found out.
func (r *Runner) Wire() Wire {
	if p := r.wire.Load(); p != nil {
		return *p
	}
	return nil
}

// Topics returns the runner's topic layout.
func (r *Runner) Topics() Topics { return r.topics }

// Ready is closed once the module has reported ready: it serves commands from then on.
func (r *Runner) Ready() <-chan struct{} { return r.readyCh }

// RunModule is module mode: connect, ask the manager for the config until it answers, build the
// handler with setup, subscribe the commands, report ready, and serve until ctx ends. It returns
// nil after a clean shutdown and an error only when the broker cannot be reached at start.
// After the start it never gives up: a lost broker is reconnected (subscriptions and ready
// redone), a restarted manager gets the ready signal again.
func (r *Runner) RunModule(ctx context.Context, setup SetupFunc) error {
	if setup == nil {
		return errors.New("everest: RunModule without a setup function")
	}
	return r.run(ctx, true, setup, nil)
}

// Serve is the standalone service: the same topics and payloads as module mode, with the handler
// given and no config request. It still reports ready, so an EVerest manager configured with
// `standalone: true` for this module id accepts it.
func (r *Runner) Serve(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("everest: Serve without a handler")
	}
	return r.run(ctx, false, nil, h)
}

func (r *Runner) run(ctx context.Context, fetch bool, setup SetupFunc, h Handler) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("everest: a Runner runs once")
	}
	r.ctx, r.fetchConfig = ctx, fetch
	r.callCtx, r.cancelCalls = context.WithCancel(context.WithoutCancel(ctx))
	defer r.cancelCalls()
	r.out = startSender(r.log)
	defer func() {
		r.out.stop() // shutdown has already stopped it, unless the first connection failed
		<-r.out.stopped()
	}()

	c, err := r.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	r.conn.Store(c)
	r.log.Info("connected to the MQTT broker", "broker", r.opts.Broker.String(), "module", r.topics.ModuleID)
	defer r.shutdown(c)

	select {
	case <-r.subscribed:
	case <-ctx.Done():
		return nil
	}
	if fetch || r.Wire() == nil {
		// Serve with "auto" asks too: the answer tells the wire; its config is not used.
		mc, ok := r.awaitConfig(ctx, c)
		if !ok {
			return nil
		}
		if fetch {
			h, err = setup(ctx, mc)
			if err != nil {
				r.log.Error("the store cannot be opened; every command will be answered with this error", "err", err)
				h = failingHandler{err: err}
			}
		}
	}
	r.handler = h
	close(r.handlerSet)
	if !r.cmdsSubscribed.Load() {
		// The wire was found out after the connection was made: subscribe its commands now. If
		// the connection is lost meanwhile, the next one subscribes them (the wire is known).
		if r.subscribe(r.conn.Load(), r.Wire().CmdFilter(r.topics), r.onCmd) {
			r.cmdsSubscribed.Store(true)
		} else if ctx.Err() != nil {
			return nil
		}
	}
	if topic, msg := r.Wire().Metadata(r.topics, r.moduleName()); topic != "" {
		if err := c.publish(ctx, topic, msg, false); err != nil {
			r.log.Warn("could not publish the module metadata", "err", err)
		}
	}

	r.readySent.Store(true)
	if err := r.publishReady(ctx, c); err != nil {
		r.log.Warn("could not report ready; will again after reconnecting", "err", err)
	} else {
		r.log.Info("ready", "commands", r.Wire().CmdFilter(r.topics), "wire", r.Wire().Name())
	}
	r.warnPaddingOnSharedTopic()
	close(r.readyCh)
	<-ctx.Done()
	return nil
}

// connect makes the first connection, retrying for StartTimeout.
func (r *Runner) connect(ctx context.Context) (*conn, error) {
	deadline := time.Now().Add(r.opts.StartTimeout)
	for attempt := 1; ; attempt++ {
		c, err := dial(ctx, connOptions{
			broker:         r.opts.Broker,
			clientID:       r.opts.ClientID,
			connectTimeout: r.opts.ConnectTimeout,
			reconnectMax:   r.opts.ReconnectInterval,
			onConnect:      r.onConnect,
			onLost:         r.opts.OnConnection,
			log:            r.log,
		})
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return nil, err
		}
		r.log.Warn("MQTT broker not reachable yet; retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// onConnect runs after every (re)connection: the session is clean, so every subscription is made
// again, and after a reconnection the module reports ready again.
func (r *Runner) onConnect(c *conn) {
	if f := r.opts.OnConnection; f != nil {
		f(true)
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return
	}
	r.bg.Add(1)
	r.mu.Unlock()
	defer r.bg.Done()
	r.conn.Store(c)

	type sub struct {
		filter string
		cb     func(topic string, payload []byte, retained bool)
	}
	var subs []sub
	w := r.Wire()
	detecting := w == nil
	if r.fetchConfig || detecting {
		subs = append(subs, sub{r.topics.Settings(), r.onSettings})
		for _, t := range r.configResponseTopics() {
			subs = append(subs, sub{t, r.onConfigResponse})
		}
	}
	if w != nil {
		subs = append(subs, sub{w.CmdFilter(r.topics), r.onCmd})
	}
	subs = append(subs,
		sub{r.topics.GlobalReady(), r.onGlobalReady},
		sub{r.topics.ModuleNames(), r.onModuleNames},
	)
	if r.fetchConfig {
		subs = append(subs, sub{r.topics.InterfaceDefinition(InterfaceName), r.onInterfaceDefinition})
	}
	if detecting {
		subs = append(subs, sub{r.topics.ModuleProvides(), r.onModuleProvides}, sub{r.topics.Interfaces(), r.onInterfaces},
			sub{r.probeTopic(), r.onProbe})
	}
	for _, s := range subs {
		if !r.subscribe(c, s.filter, s.cb) {
			return // shutting down, or the next reconnection subscribes again
		}
	}
	if w != nil {
		r.cmdsSubscribed.Store(true)
	}
	r.subscribedOnce.Do(func() { close(r.subscribed) })
	if r.readySent.Load() {
		r.log.Info("reconnected to the MQTT broker; reporting ready again")
		if err := r.publishReady(r.ctx, c); err != nil {
			r.log.Warn("could not report ready after reconnecting", "err", err)
		}
	}
}

// subscribe subscribes filter, retrying until it succeeds; false when the run ends or the
// connection is lost (the next connection subscribes again).
func (r *Runner) subscribe(c *conn, filter string, cb func(string, []byte, bool)) bool {
	for {
		err := c.subscribe(r.ctx, filter, cb)
		if err == nil {
			return true
		}
		if r.ctx.Err() != nil || !c.connected() {
			return false
		}
		r.log.Warn("subscription failed; retrying", "err", err)
		select {
		case <-r.ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// awaitConfig asks the manager for the module config until it answers or ctx ends. While the
// wire is not known yet, it asks in every form the evidence allows and takes the wire from the
// answer (detect.go).
func (r *Runner) awaitConfig(ctx context.Context, c *conn) (ModuleConfig, bool) {
	if w := r.Wire(); w != nil {
		if topic, _, _ := w.ConfigRequest(r.topics); topic == "" {
			if r.opts.FileConfig == nil {
				r.log.Error("this EVerest wire has no config over MQTT, and no config file was read; using the defaults", "wire", w.Name())
				return ModuleConfig{ModuleID: r.topics.ModuleID, Params: map[string]json.RawMessage{}, EtcDir: EtcDirOf(r.opts.InstallPrefix), Wire: w.Name()}, true
			}
			mc := *r.opts.FileConfig
			if mc.ModuleName != "" {
				name := mc.ModuleName
				r.moduleNameSeen.Store(&name)
			}
			r.log.Info("config read from the EVerest config file", "parameters", len(mc.Params), "etc_dir", mc.EtcDir)
			return mc, true
		}
	} else {
		r.awaitRetained(ctx)
	}
	for attempt := 1; ; attempt++ {
		for _, w := range r.askWith() {
			topic, req, _ := w.ConfigRequest(r.topics)
			if err := c.publish(ctx, topic, req, false); err != nil && ctx.Err() == nil {
				r.log.Warn("could not ask the manager for the config", "err", err)
			}
		}
		if mc, ok := r.nextConfig(ctx, attempt); ok {
			return mc, true
		}
		if ctx.Err() != nil {
			return ModuleConfig{}, false
		}
	}
}

// nextConfig waits ConfigRetry for a usable config response; ok is false on timeout or when
// ctx ends.
func (r *Runner) nextConfig(ctx context.Context, attempt int) (ModuleConfig, bool) {
	timer := time.NewTimer(r.opts.ConfigRetry)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ModuleConfig{}, false
		case <-timer.C:
			r.log.Warn("no config from the manager yet; asking again", "attempt", attempt, "after", r.opts.ConfigRetry)
			return ModuleConfig{}, false
		case answer := <-r.configCh:
			w, reason := r.Wire(), r.opts.WireReason
			if w == nil {
				w, reason = r.wireOfAnswer(answer)
				if w == nil {
					continue
				}
			} else if _, _, want := w.ConfigRequest(r.topics); answer.topic != want {
				continue
			}
			mc, err := w.ParseConfig(r.topics, answer.payload)
			if err != nil {
				r.log.Error("unusable config from the manager; waiting for another", "err", err)
				continue
			}
			if r.Wire() == nil {
				r.setWire(w)
				r.log.Info("EVerest wire chosen", "wire", w.Name(), "releases", w.Releases(), "why", reason)
			}
			mc.Wire = w.Name()
			if def := r.ifaceDef.Load(); def != nil {
				mc.Interface = *def
			}
			if mc.ModuleName != "" {
				name := mc.ModuleName
				r.moduleNameSeen.Store(&name)
			}
			if d := r.etcDir.Load(); d != nil {
				mc.EtcDir = *d
			} else {
				mc.EtcDir = EtcDirOf(r.opts.InstallPrefix)
			}
			if mc.ModuleID == "" {
				mc.ModuleID = r.topics.ModuleID
			}
			r.log.Info("config received from the manager", "parameters", len(mc.Params), "etc_dir", mc.EtcDir)
			return mc, true
		}
	}
}

func (r *Runner) onConfigResponse(topic string, payload []byte, _ bool) {
	select {
	case r.configCh <- configAnswer{topic: topic, payload: append([]byte(nil), payload...)}:
	default: // enough are already waiting to be read
	}
}

func (r *Runner) onSettings(_ string, payload []byte, _ bool) {
	r.hint.note(payload, &r.hint.settings)
	if d := etcDirOfSettings(payload); d != "" {
		r.etcDir.Store(&d)
	}
}

// onModuleNames notices a (re)started manager: it publishes its retained definitions, and an
// already running module must report ready again or the manager waits forever (note §1.9). A copy
// delivered because we just subscribed is old news; an empty one is the manager clearing it.
func (r *Runner) onModuleNames(_ string, payload []byte, retained bool) {
	r.hint.note(payload, &r.hint.moduleNames)
	if len(payload) == 0 || retained || !r.readySent.Load() {
		return
	}
	r.log.Info("the EVerest manager (re)started; reporting ready again")
	if c := r.conn.Load(); c != nil {
		r.out.send(c, r.topics.ModuleReady(), r.Wire().ModuleReady())
	}
}

func (r *Runner) onGlobalReady(_ string, payload []byte, _ bool) {
	w := r.Wire()
	if w != nil && w.IsGlobalReady(payload) && r.globalReady.CompareAndSwap(false, true) {
		r.log.Info("EVerest is ready (global ready)")
	}
}

// publishReady reports ready in the wire's form. Only called once the wire is known: a ready of
// the wrong generation takes a v0.24 manager down (its handler reads a bare bool).
func (r *Runner) publishReady(ctx context.Context, c *conn) error {
	return c.publish(ctx, r.topics.ModuleReady(), r.Wire().ModuleReady(), false)
}

// moduleName is the module's name for the metadata: the one the manager configured, else the
// one of argv[0] ("<id>:<Name>"), else EvseSecurity.
func (r *Runner) moduleName() string {
	if p := r.moduleNameSeen.Load(); p != nil && *p != "" {
		return *p
	}
	return "EvseSecurity"
}

// PublishVar publishes variable name with value (QoS 2, not retained). It does not wait for the
// broker: messages leave in order, so a variable published by a command goes out before the
// command's result.
func (r *Runner) PublishVar(name string, value any) error {
	c := r.conn.Load()
	if c == nil {
		return errors.New("not connected")
	}
	w := r.Wire()
	if w == nil {
		return errors.New("the EVerest wire is not known yet")
	}
	topic, msg, err := w.Var(r.topics, name, value)
	if err != nil {
		return fmt.Errorf("var %s: %w", name, err)
	}
	t := c.c.Publish(topic, QoS, false, msg)
	select {
	case <-t.Done():
		return t.Error()
	default:
		return nil
	}
}

// shutdown stops taking commands, lets running ones finish within the grace period, and
// disconnects.
func (r *Runner) shutdown(c *conn) {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.opts.ShutdownGrace):
		r.log.Warn("commands still running at shutdown; cancelling them")
		r.cancelCalls()
		select {
		case <-done:
		case <-time.After(r.opts.ShutdownGrace):
			r.log.Error("commands did not end after cancelling; leaving them")
		}
	}
	r.cancelCalls()
	r.bg.Wait()
	// What the callbacks queued (Shutdown answers above all) goes out before the DISCONNECT;
	// a connection that takes nothing any more holds the shutdown for one more grace period
	// at most, and the sender's last Publish then ends with paho's write timeout.
	r.out.stop()
	select {
	case <-r.out.stopped():
	case <-time.After(r.opts.ShutdownGrace):
		r.log.Warn("messages still waiting to be sent at shutdown; disconnecting")
	}
	c.close()
	r.log.Info("disconnected from the MQTT broker")
}

// failingHandler answers every command with the error that kept the handler from being built.
type failingHandler struct{ err error }

func (f failingHandler) Call(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return nil, &CmdError{Type: HandlerException, Message: "evse_security is not available: " + f.err.Error()}
}
