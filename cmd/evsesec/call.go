package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
)

// runCall is `evsesec call`: one interface command, in-process, result as JSON on stdout. Exit 0
// whenever the command produced a result (even Rejected), 2 with one line on stderr when the
// command or its arguments cannot be run, 1 when the store cannot be opened. With --broker the
// command goes over MQTT to a running service instead (see callRemote).
func runCall(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	var bf brokerFlags
	bf.register(fs, "call a running service over MQTT at this broker URL (tcp://host:port, ssl://host:port, unix:///path) instead of opening the store")
	timeout := fs.Duration("timeout", 10*time.Second, "with --broker: how long to wait for the broker and the result")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec call [--certs DIR | --config FILE] [--password PW] COMMAND [ARGS_JSON|-]")
		fmt.Fprintln(stderr, "       evsesec call --broker URL [--module-id evse_security] [--prefix everest/] [--everest-wire v0.25] [--timeout 10s] COMMAND [ARGS_JSON|-]")
		fmt.Fprintln(stderr, "\nRuns one evse_security interface command against the store and prints its result as JSON.")
		fmt.Fprintln(stderr, "With --broker it sends the command to a running service (evsesec serve, or the EVerest module) as an")
		fmt.Fprintln(stderr, "EVerest Cmd message and prints the result the same way; exit 2 also for a SchemaValidationError or")
		fmt.Fprintln(stderr, "MessageParsingError reply, 1 when the broker cannot be reached or no result comes within --timeout.")
		fmt.Fprintln(stderr, "ARGS_JSON is the command's argument object; - reads it from stdin; omitted means {}.\n\nCommands:")
		for _, c := range api.Commands() {
			fmt.Fprintln(stderr, "  "+c)
		}
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 || len(rest) > 2 {
		fmt.Fprintln(stderr, "evsesec call: want COMMAND [ARGS_JSON] (see evsesec call -h)")
		return exitUsage
	}
	name, argsJSON := rest[0], "{}"
	if len(rest) == 2 {
		argsJSON = rest[1]
	}
	if argsJSON == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(stderr, "evsesec call: read arguments from stdin:", err)
			return exitUsage
		}
		argsJSON = string(b)
	}
	if !isKnownCommand(name) {
		fmt.Fprintf(stderr, "evsesec call: unknown command %q (see evsesec call -h)\n", name)
		return exitUsage
	}
	remoteOnly, local := "", ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "module-id", "prefix", "timeout", "username", "password-file", "tls-ca", "tls-cert", "tls-key", "everest-wire":
			remoteOnly = "--" + f.Name
		case "certs", "config", "password", "v":
			local = "--" + f.Name
		}
	})
	if bf.url == "" {
		if remoteOnly != "" {
			fmt.Fprintf(stderr, "evsesec call: %s applies with --broker only (see evsesec call -h)\n", remoteOnly)
			return exitUsage
		}
		return dispatchRaw(&sf, name, []byte(argsJSON), stdout, stderr)
	}
	if local != "" {
		fmt.Fprintf(stderr, "evsesec call: %s does not apply with --broker: the service has its own store\n", local)
		return exitUsage
	}
	return callRemote(&bf, *timeout, name, []byte(argsJSON), stdout, stderr)
}

// callRemote sends one command to a running service over MQTT, as an EVerest module would, and
// prints the result exactly as the in-process call does. Exit 0 with a result; 2 for arguments
// that are not JSON or an error reply of type SchemaValidationError or MessageParsingError; 1
// when the broker cannot be reached, no result comes within the timeout, or the reply is another
// error.
func callRemote(bf *brokerFlags, timeout time.Duration, name string, argsJSON []byte, stdout, stderr io.Writer) int {
	if !json.Valid(argsJSON) {
		fmt.Fprintf(stderr, "evsesec: %s: arguments are not valid JSON\n", name)
		return exitUsage
	}
	b, err := bf.broker()
	if err != nil {
		fmt.Fprintln(stderr, "evsesec call:", err)
		return exitUsage
	}
	w, err := bf.everestWire()
	if err == nil && w == nil {
		err = errors.New("--everest-wire auto: a caller must be told the wire (a manager does not answer callers)")
	}
	if err != nil {
		fmt.Fprintln(stderr, "evsesec call:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := everest.NewCaller(ctx, everest.CallerOptions{Broker: b, Prefix: bf.prefix, ModuleID: bf.moduleID, ConnectTimeout: timeout, Wire: w})
	if err != nil {
		fmt.Fprintln(stderr, "evsesec call: cannot reach the MQTT broker:", oneLine(err.Error()))
		return 1
	}
	defer c.Close()
	out, err := c.Call(ctx, name, argsJSON)
	if err != nil {
		var ce *everest.CmdError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "evsesec: %s (%s)\n", oneLine(ce.Message), ce.Type)
			if ce.Type == everest.SchemaValidationError || ce.Type == everest.MessageParsingError {
				return exitUsage
			}
			return 1
		}
		fmt.Fprintln(stderr, "evsesec call:", oneLine(err.Error()))
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

func isKnownCommand(name string) bool {
	for _, c := range api.Commands() {
		if c == name {
			return true
		}
	}
	return false
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
