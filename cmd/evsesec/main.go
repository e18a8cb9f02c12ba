// Command evsesec is the certificate and key store of an EV charging station: an EVerest
// EvseSecurity module replacement, a standalone service and the operator's CLI.
//
//	evsesec call [--certs DIR | --config FILE] [--password PW] COMMAND [ARGS_JSON]
//	evsesec pki init [--password PW] DIR
//
// Run `evsesec help` for every command.
package main

import (
	"fmt"
	"io"
	"os"
)

// exitUsage is the exit status for a command line or arguments that cannot be run.
const exitUsage = 2

// subcommand is one verb of the CLI.
type subcommand struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var subcommands map[string]subcommand

func init() {
	subcommands = map[string]subcommand{
		"call":       {"run one evse_security interface command and print its JSON result", runCall},
		"pki":        {"make a test PKI (pki init DIR)", runPKI},
		"help":       {"show this help", runHelp},
		"install-ca": {"install a CA certificate file into a domain", runInstallCA},
		"verify":     {"verify a certificate chain file against domains", runVerify},
		"serve":      {"serve the interface over MQTT (EVerest topics; embedded or external broker)", runServe},
	}
	for name, sc := range operatorSubcommands {
		subcommands[name] = sc
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if isModuleInvocation(args) { // started by the EVerest manager as a module
		return runModule(args, stdout, stderr)
	}
	if len(args) == 0 {
		runHelp(nil, stderr, stderr)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" {
		return runHelp(nil, stdout, stderr)
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "evsesec: unknown command %q (see evsesec help)\n", args[0])
		return exitUsage
	}
	return sc.run(args[1:], stdout, stderr)
}

func runHelp(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "evsesec: certificate and key store of an EV charging station")
	fmt.Fprintln(stdout, "\nUsage: evsesec COMMAND [FLAGS] [ARGS]\n\nCommands:")
	for _, name := range sortedKeys(subcommands) {
		fmt.Fprintf(stdout, "  %-8s %s\n", name, subcommands[name].summary)
	}
	fmt.Fprintln(stdout, "\nRun `evsesec COMMAND -h` for the flags of a command.")
	return 0
}
