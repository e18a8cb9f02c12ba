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

	"github.com/evsesec/evsesec/api"
)

// runInstallCA is `evsesec install-ca --type V2G FILE`: install_ca_certificate with the
// certificate read from a file.
func runInstallCA(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install-ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	caType := fs.String("type", "", "trust domain: V2G, MO, CSMS or MF (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec install-ca [--certs DIR | --config FILE] --type V2G|MO|CSMS|MF FILE")
		fmt.Fprintln(stderr, "\nInstalls one CA certificate (PEM or DER) into a domain's bundle and prints the result.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, argv, 1); !ok {
		return code
	}
	pem, err := readInput(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "evsesec install-ca:", err)
		return exitUsage
	}
	return dispatch(&sf, "install_ca_certificate", map[string]any{"certificate": pem, "certificate_type": *caType}, stdout, stderr)
}

// runVerify is `evsesec verify --type V2G[,MO] FILE`: verify_certificate on a chain file.
func runVerify(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	types := fs.String("type", "", "leaf types to verify against, comma separated: CSMS, V2G, MF, MO (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec verify [--certs DIR | --config FILE] --type V2G[,MO,...] FILE")
		fmt.Fprintln(stderr, "\nVerifies a certificate chain file (leaf first) against the trust domains of the given")
		fmt.Fprintln(stderr, "leaf types and prints the CertificateValidationResult.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, argv, 1); !ok {
		return code
	}
	chain, err := readInput(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "evsesec verify:", err)
		return exitUsage
	}
	list := []string{}
	for _, t := range strings.Split(*types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			list = append(list, t)
		}
	}
	return dispatch(&sf, "verify_certificate", map[string]any{"certificate_chain": chain, "certificate_types": list}, stdout, stderr)
}

// parseFlags parses argv and wants exactly nargs positional arguments.
func parseFlags(fs *flag.FlagSet, argv []string, nargs int) (int, bool) {
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return exitUsage, false
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

// readInput reads a file, or stdin for "-".
func readInput(name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	return string(b), err
}

// dispatch runs one interface command with Go-valued arguments and prints the JSON result, with
// the exit codes of `evsesec call`.
func dispatch(sf *storeFlags, command string, args map[string]any, stdout, stderr io.Writer) int {
	argsJSON, err := json.Marshal(args)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec:", err)
		return exitUsage
	}
	return dispatchRaw(sf, command, argsJSON, stdout, stderr)
}

// dispatchRaw runs one interface command with its JSON argument object and prints the result.
func dispatchRaw(sf *storeFlags, command string, argsJSON []byte, stdout, stderr io.Writer) int {
	s, err := sf.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec:", err)
		return 1
	}
	// Close removes what the store made outside the tree for this process (derived files of a
	// read-only tree): a path get_verify_location hands out for such a tree lives only as long
	// as the process that made it.
	defer s.Close()
	out, err := api.NewDispatcher(s).Call(context.Background(), command, argsJSON)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec:", oneLine(err.Error()))
		var ae *api.ArgError
		if errors.As(err, &ae) || errors.Is(err, api.ErrUnknownCommand) {
			return exitUsage
		}
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}
