package everest

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ArgumentError is implemented by a Handler's error for arguments that do not fit the
// interface (the api package's ArgError does): BadArgument names the argument, or is "" when
// the argument object as a whole is unreadable.
type ArgumentError interface {
	error
	BadArgument() string
}

// ErrorTypeOf classifies a Handler's error for the caller: a *CmdError keeps its type; an
// ArgumentError is a MessageParsingError when the argument object as a whole is unreadable and
// a SchemaValidationError when an argument is missing, of the wrong type or outside its enum
// (what the framework's own validation answers); anything else is a HandlerException.
func ErrorTypeOf(err error) ErrorType {
	var ce *CmdError
	if errors.As(err, &ce) {
		return ce.Type
	}
	var ae ArgumentError
	if errors.As(err, &ae) {
		if ae.BadArgument() == "" {
			return MessageParsingError
		}
		return SchemaValidationError
	}
	return HandlerException
}

// cmdErrorOf turns a Handler's error into the error of the reply.
func cmdErrorOf(err error) *CmdError {
	var ce *CmdError
	if errors.As(err, &ce) {
		return ce
	}
	return &CmdError{Type: ErrorTypeOf(err), Message: err.Error()}
}

// onCmd receives a command. Each call runs in its own goroutine, so the MQTT client's delivery
// goroutine never waits for a command.
func (r *Runner) onCmd(topic string, payload []byte, retained bool) {
	w := r.Wire()
	if w == nil {
		return // not subscribed before the wire is known
	}
	name, cmd, ok, derr := w.DecodeCall(r.topics, topic, payload)
	if !ok {
		return
	}
	if retained {
		// Commands are never retained by the framework; running one on every resubscription
		// would repeat installs and deletes.
		r.log.Warn("ignoring a retained command message", "topic", topic)
		return
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		if derr == nil {
			r.replyAsync(name, cmd, &CmdError{Type: Shutdown, Message: "evse_security is shutting down"})
		}
		return
	}
	r.calls.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.calls.Done()
		r.serveCmd(name, cmd, derr)
	}()
}

// serveCmd runs one call and publishes its result. Every call gets an answer, unless it names no
// caller (or, on the older wires, no command) to answer to.
func (r *Runner) serveCmd(name string, cmd Cmd, err error) {
	if err != nil {
		if cmd.Origin == "" || name == "" {
			r.log.Warn("cannot answer a command without an origin", "cmd", name, "err", err)
			return
		}
		r.reply(name, cmd, nil, &CmdError{Type: MessageParsingError, Message: err.Error()})
		return
	}
	select {
	case <-r.handlerSet:
	case <-r.callCtx.Done():
		r.reply(name, cmd, nil, &CmdError{Type: Shutdown, Message: "evse_security is shutting down"})
		return
	}
	select {
	case r.sem <- struct{}{}:
	case <-r.callCtx.Done():
		r.reply(name, cmd, nil, &CmdError{Type: Shutdown, Message: "evse_security is shutting down"})
		return
	}
	start := time.Now()
	result, cerr := r.call(name, cmd.Args)
	<-r.sem
	if cerr != nil {
		r.log.Info("command failed", "cmd", name, "origin", cmd.Origin, "id", cmd.ID, "error_type", cerr.Type, "err", cerr.Message)
	} else {
		r.log.Debug("command", "cmd", name, "origin", cmd.Origin, "id", cmd.ID, "took", time.Since(start))
	}
	r.reply(name, cmd, result, cerr)
}

// call runs the handler; a panic becomes a HandlerException.
func (r *Runner) call(name string, args json.RawMessage) (result json.RawMessage, cerr *CmdError) {
	defer func() {
		if p := recover(); p != nil {
			result, cerr = nil, &CmdError{Type: HandlerException, Message: fmt.Sprintf("%s: internal error: %v", name, p)}
		}
	}()
	res, err := r.handler.Call(r.callCtx, name, args)
	if err != nil {
		return nil, cmdErrorOf(err)
	}
	// A result that is not JSON is found by encodeReply, which has to scan it anyway.
	return res, nil
}

// encodeReply builds the result message and its topic; an unencodable result becomes a
// HandlerException. On a wire whose callers cannot read an error result, a failure is answered
// with the command's fallback result (Options.Fallback): the caller then sees the command fail in
// its own terms instead of waiting 300 s for an answer that never comes. With Options.PadResults
// the message is padded, whatever the wire.
//
// A padded message lies in a reused buffer, returned as well (nil when unpadded); see
// padResult for when it may go back.
func (r *Runner) encodeReply(name string, cmd Cmd, result json.RawMessage, cerr *CmdError) (string, []byte, *paddedBuf) {
	w := r.Wire()
	fromHandler := cerr == nil
	if cerr != nil && !w.CarriesErrors() {
		result, cerr = json.RawMessage("null"), nil
		if r.opts.Fallback != nil {
			if fb := r.opts.Fallback(name); len(fb) > 0 {
				result = fb
			}
		}
	}
	topic, msg, err := w.Result(r.topics, name, cmd, result, cerr)
	if err != nil {
		r.log.Warn("could not encode a command result", "cmd", name, "origin", cmd.Origin, "id", cmd.ID, "err", err)
		e := &CmdError{Type: HandlerException, Message: err.Error()}
		if fromHandler {
			// The handler's result is not JSON (the wires validate it while encoding): a
			// failure like any other, so it takes the fallback where errors cannot be carried.
			if !json.Valid(result) {
				e.Message = name + ": the handler returned invalid JSON"
			}
			return r.encodeReply(name, cmd, nil, e)
		}
		topic, msg, _ = w.Result(r.topics, name, cmd, nil, e)
	}
	msg, pb := padResult(msg, r.opts.PadResults)
	return topic, msg, pb
}

// reply publishes the result to the caller and waits for the broker to take it.
func (r *Runner) reply(name string, cmd Cmd, result json.RawMessage, cerr *CmdError) {
	c := r.conn.Load()
	topic, msg, pb := r.encodeReply(name, cmd, result, cerr)
	if err := c.publish(r.callCtx, topic, msg, false); err != nil {
		// paho may still hold the message (a resend after reconnecting): its buffer is left
		// to the garbage collector.
		r.log.Warn("could not send a command result", "cmd", name, "origin", cmd.Origin, "id", cmd.ID, "err", err)
		return
	}
	// The broker has acknowledged the QoS 2 publish: paho replaced the stored PUBLISH with its
	// PUBREL at the PUBREC and dropped that at the PUBCOMP, so nothing refers to msg now.
	releasePadded(pb)
}

// replyAsync hands the result to the runner's sender (inside a message callback: see sender.go).
func (r *Runner) replyAsync(name string, cmd Cmd, cerr *CmdError) {
	if c := r.conn.Load(); c != nil {
		// The sender does not wait for the broker, so the padded buffer (if any) is not reused.
		topic, msg, _ := r.encodeReply(name, cmd, nil, cerr)
		r.out.send(c, topic, msg)
	}
}
