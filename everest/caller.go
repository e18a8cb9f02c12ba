package everest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// CallerOptions configure a Caller.
type CallerOptions struct {
	// Broker is the MQTT broker the provider is on.
	Broker Broker
	// Prefix, ModuleID and Impl name the provider (defaults "everest/", "evse_security", "main").
	Prefix, ModuleID, Impl string
	// Origin is the caller's module id, the last element of its response topics; default
	// "evsesec_call_<random>".
	Origin string
	// ConnectTimeout bounds the connection attempt (default 5 s).
	ConnectTimeout time.Duration
	// Logger receives connection diagnostics; nil discards them.
	Logger *slog.Logger
	// Wire is the wire the provider speaks; nil means V025.
	Wire Wire
}

// Caller calls the commands of a module over the EVerest wire, the way another module does: on
// v0.25 a Cmd to the command's topic and the CmdResult on <cmd topic>/response/<origin>, on the
// older wires call and result on the implementation's one cmd topic; the result is matched by
// id. It is safe for concurrent use.
type Caller struct {
	conn   *conn
	topics Topics
	origin string
	wire   Wire

	mu      sync.Mutex
	pending map[string]chan CmdResultValues
}

// NewCaller connects and subscribes the caller's response topics.
func NewCaller(ctx context.Context, opts CallerOptions) (*Caller, error) {
	if opts.Origin == "" {
		opts.Origin = "evsesec_call_" + randomID(4)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Wire == nil {
		opts.Wire = V025
	}
	c := &Caller{topics: opts.Wire.Layout(NewTopics(opts.Prefix, opts.ModuleID, opts.Impl)), origin: opts.Origin, wire: opts.Wire, pending: map[string]chan CmdResultValues{}}
	subscribed := make(chan error, 1)
	onConnect := func(cn *conn) {
		err := cn.subscribe(context.Background(), c.wire.ResultFilter(c.topics, c.origin), c.onResult)
		select {
		case subscribed <- err:
		default:
		}
	}
	cn, err := dial(ctx, connOptions{broker: opts.Broker, clientID: opts.Origin, connectTimeout: opts.ConnectTimeout, onConnect: onConnect, log: log})
	if err != nil {
		return nil, err
	}
	select {
	case err = <-subscribed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		cn.close()
		return nil, err
	}
	c.conn = cn
	return c, nil
}

// Origin is the caller's module id.
func (c *Caller) Origin() string { return c.origin }

func (c *Caller) onResult(topic string, payload []byte, _ bool) {
	res, ok, err := c.wire.DecodeResult(c.topics, topic, payload)
	if err != nil || !ok {
		return
	}
	c.mu.Lock()
	ch, ok := c.pending[res.ID]
	delete(c.pending, res.ID)
	c.mu.Unlock()
	if ok {
		ch <- res
	}
}

// Call runs command name with its JSON argument object (nil means {}) and returns the result
// (JSON null for commands without one). An error reply is returned as a *CmdError; no reply
// before ctx ends is ctx's error.
func (c *Caller) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	if len(args) > 0 && !json.Valid(args) {
		return nil, errors.New("arguments are not valid JSON")
	}
	id := newUUID()
	topic, msg, err := c.wire.Call(c.topics, name, id, c.origin, args)
	if err != nil {
		return nil, err
	}
	ch := make(chan CmdResultValues, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.conn.publish(ctx, topic, msg, false); err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		if res.Error != nil {
			return nil, res.Error
		}
		if len(res.Retval) == 0 {
			return json.RawMessage("null"), nil
		}
		return res.Retval, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer to %s from %s: %w", name, c.topics.ModuleID, ctx.Err())
	}
}

// Close disconnects.
func (c *Caller) Close() { c.conn.close() }
