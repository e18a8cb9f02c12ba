package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/evsesec/evsesec/api"
)

// runCall is `evsesec call`: one interface command, in-process, result as JSON on stdout. Exit 0
// whenever the command produced a result (even Rejected), 2 with one line on stderr when the
// command or its arguments cannot be run, 1 when the store cannot be opened.
func runCall(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec call [--certs DIR | --config FILE] [--password PW] COMMAND [ARGS_JSON|-]")
		fmt.Fprintln(stderr, "\nRuns one evse_security interface command against the store and prints its result as JSON.")
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
	return dispatchRaw(&sf, name, []byte(argsJSON), stdout, stderr)
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
