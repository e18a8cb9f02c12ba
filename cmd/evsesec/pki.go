package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/evsesec/evsesec/testpki"
)

// runPKI is `evsesec pki init DIR`: an ISO 15118-2 / OCPP test PKI in the EVerest default
// layout, for demos and tests. It never overwrites an existing file.
func runPKI(argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 0 || argv[0] != "init" {
		fmt.Fprintln(stderr, "Usage: evsesec pki init [--password PW] DIR")
		return exitUsage
	}
	fs := flag.NewFlagSet("pki init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	password := fs.String("password", "", "encrypt the key files with this password")
	ocspURL := fs.String("ocsp-url", "", "OCSP responder URL put into the ISO 15118 certificates")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: evsesec pki init [--password PW] [--ocsp-url URL] DIR")
		fmt.Fprintln(stderr, "\nWrites a test PKI (V2G, MO, CSMS and MF domains, SECC and CSMS leaves with keys) in the")
		fmt.Fprintln(stderr, "EVerest default layout under DIR, and the CA keys and extra certificates under DIR/pki.")
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
	p, err := testpki.Generate(testpki.Options{Password: *password, OCSPURL: *ocspURL})
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
