package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/evsesec/evsesec/testpki"
)

// runPKI is `evsesec pki init DIR`: an ISO 15118-2 / OCPP test PKI in the EVerest default
// layout, for demos and tests, optionally with an ISO 15118-20 chain and per-EVSE SECC leaves. It
// never overwrites an existing file.
func runPKI(argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 0 || argv[0] != "init" {
		fmt.Fprintln(stderr, "Usage: evsesec pki init [--password PW] DIR")
		return exitUsage
	}
	fs := flag.NewFlagSet("pki init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	password := fs.String("password", "", "encrypt the key files with this password")
	ocspURL := fs.String("ocsp-url", "", "OCSP responder URL put into the ISO 15118 certificates")
	iso20 := fs.Bool("iso15118-20", false, "also make an ISO 15118-20 chain (own V2G root, CPO sub-CAs, SECC leaf; all P-521)")
	var seccIDs repeated
	fs.Var(&seccIDs, "secc-id", "make one SECC leaf (CN = `ID`) per EVSE; repeat for each EVSE")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec pki init [--password PW] [--ocsp-url URL] [--iso15118-20] [--secc-id ID ...] DIR")
		fmt.Fprintln(stderr, "\nWrites a test PKI (V2G, MO, CSMS and MF domains, SECC and CSMS leaves with keys) in the")
		fmt.Fprintln(stderr, "EVerest default layout under DIR, and the CA keys and extra certificates under DIR/pki.")
		fmt.Fprintln(stderr, "--iso15118-20 adds the ISO 15118-20 chain (V2G20 leaf beside the V2G one); --secc-id ID")
		fmt.Fprintln(stderr, "adds a SECC leaf with CN ID for that EVSE (and a -20 one with --iso15118-20).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	dir := fs.Arg(0)
	p, err := testpki.Generate(testpki.Options{Password: *password, OCSPURL: *ocspURL, ISO15118_20: *iso20, SeccIDs: seccIDs})
	if err != nil {
		fmt.Fprintln(stderr, "evsesec pki init:", err)
		return 1
	}
	layout, err := p.WriteLayout(dir, *password)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec pki init:", err)
		return 1
	}
	for _, f := range layout.Files() {
		fmt.Fprintln(stdout, f)
	}
	return 0
}

// repeated collects the values of a flag given more than once.
type repeated []string

// String joins the values, for flag's defaults output.
func (r *repeated) String() string { return strings.Join(*r, ",") }

// Set adds one value.
func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}
