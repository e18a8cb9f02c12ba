package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/evsesec/evsesec/store"
)

// operatorSubcommands are the verbs for people looking after a station's store.
var operatorSubcommands = map[string]subcommand{
	"ls":     {"list every certificate: domain, subject, validity, days left, key", runLs},
	"doctor": {"explain the store: what is missing, misfiled, expiring, and how to fix it", runDoctor},
	"gc":     {"run garbage collection once and print what it removed", runGC},
	"csr":    {"generate a CSR (and its key) for the CSMS or SECC leaf", runCSR},
	"check":  {"monitoring plugin: one line and exit 0/1/2/3 for ok/warning/critical/unknown (Nagios, Icinga, Zabbix)", runCheck},
}

// opFlags parses the common flags of an operator verb: the store flags and --json.
func opFlags(name, usage string, argv []string, stderr io.Writer, extra func(*flag.FlagSet)) (*storeFlags, bool, int, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := &storeFlags{}
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, argv, 0); !ok {
		return nil, false, code, false
	}
	return sf, *asJSON, 0, true
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func runLs(argv []string, stdout, stderr io.Writer) int {
	sf, asJSON, code, ok := opFlags("ls", "Usage: evsesec ls [--certs DIR | --config FILE] [--json]\n\nLists every certificate of the store.", argv, stderr, nil)
	if !ok {
		return code
	}
	s, err := sf.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec ls:", err)
		return 1
	}
	recs := s.Inventory()
	if asJSON {
		if recs == nil {
			recs = []store.CertificateRecord{}
		}
		return printJSON(stdout, recs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tDOMAIN\tSECC-ID\tSUBJECT\tVALIDITY\tDAYS LEFT\tKEY\tPATH")
	for _, r := range recs {
		key := "-"
		if r.Kind == "leaf" {
			key = r.KeyStatus
			if r.Key != "" {
				key = r.KeyLocation + ":" + r.Key
			}
			if r.InUse {
				key += " (in use)"
			}
		}
		dom := string(r.Domain)
		if r.LeafType != "" {
			dom = string(r.LeafType) + " leaf"
		}
		seccID := "-"
		if r.SeccID != "" {
			seccID = printable(r.SeccID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Kind, dom, seccID, printable(r.Subject), r.Validity, r.DaysLeft, printable(key), printable(r.Path))
	}
	tw.Flush()
	return 0
}

func runDoctor(argv []string, stdout, stderr io.Writer) int {
	var seccIDs repeated
	sf, asJSON, code, ok := opFlags("doctor", "Usage: evsesec doctor [--certs DIR | --config FILE] [--secc-id ID ...] [--json]\n\nExplains the store and how to fix what is wrong. Exit 1 when it finds an error.\nWith the EVSEs' SECC-IDs (--secc-id, repeated, or the config's secc_ids) it also says which EVSE has\nno SECC leaf of its own and which share one.", argv, stderr,
		func(fs *flag.FlagSet) {
			fs.Var(&seccIDs, "secc-id", "SECC-ID (ISO15118SeccId) of an EVSE; repeat for each; overrides the config's secc_ids")
		})
	if !ok {
		return code
	}
	s, err := sf.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec doctor:", err)
		return 1
	}
	fs := s.Diagnose()
	if len(seccIDs) > 0 {
		fs = s.DiagnoseEVSEs(seccIDs)
	}
	exit := 0
	for _, f := range fs {
		if f.Severity == "error" {
			exit = 1
		}
	}
	if asJSON {
		if fs == nil {
			fs = []store.Finding{}
		}
		printJSON(stdout, fs)
		return exit
	}
	if len(fs) == 0 {
		fmt.Fprintln(stdout, "no problems found")
		return 0
	}
	for _, f := range fs {
		fmt.Fprintf(stdout, "%-7s %s\n", f.Severity, printable(f.Problem))
		if f.Path != "" {
			fmt.Fprintf(stdout, "        at:  %s\n", printable(f.Path))
		}
		fmt.Fprintf(stdout, "        fix: %s\n", printable(f.Fix))
	}
	return exit
}

func runGC(argv []string, stdout, stderr io.Writer) int {
	sf, asJSON, code, ok := opFlags("gc", "Usage: evsesec gc [--certs DIR | --config FILE] [--json]\n\nRuns garbage collection once: expired CSR keys, stale OCSP responses, and expired leaves when the store is over a limit.", argv, stderr, nil)
	if !ok {
		return code
	}
	s, err := sf.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec gc:", err)
		return 1
	}
	rep := s.GarbageCollect()
	if asJSON {
		return printJSON(stdout, rep)
	}
	for _, l := range []struct {
		what  string
		paths []string
	}{{"expired CSR key", rep.ExpiredCSRKeys}, {"pruned leaf file", rep.RemovedLeaves}, {"stale OCSP response", rep.RemovedOCSP}, {"leftover temporary file", rep.RemovedTempFiles}} {
		for _, p := range l.paths {
			fmt.Fprintf(stdout, "removed %s: %s\n", l.what, p)
		}
	}
	if len(rep.ExpiredCSRKeys)+len(rep.RemovedLeaves)+len(rep.RemovedOCSP)+len(rep.RemovedTempFiles) == 0 {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return 0
}

func runCSR(argv []string, stdout, stderr io.Writer) int {
	var leafType, country, org, cn string
	var tpm bool
	sf, asJSON, code, ok := opFlags("csr", "Usage: evsesec csr [--certs DIR | --config FILE] --type CSMS|V2G|V2G20 --country DE --org ORG --cn NAME [--tpm]\n\nMakes a key in the leaf key directory and prints the CSR (PEM) signed with it.\nV2G20 is the ISO 15118-20 SECC leaf (P-521, DC=CSO); for one leaf per EVSE give the EVSE's SECC-ID as --cn.", argv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&leafType, "type", "", "leaf type: CSMS, V2G or V2G20 (required)")
		fs.StringVar(&country, "country", "", "subject C: two letters (required)")
		fs.StringVar(&org, "org", "", "subject O (required)")
		fs.StringVar(&cn, "cn", "", "subject CN (required)")
		fs.BoolVar(&tpm, "tpm", false, "create the key in the TPM")
	})
	if !ok {
		return code
	}
	s, err := sf.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "evsesec csr:", err)
		return 1
	}
	lt := store.LeafType(leafType)
	if !lt.Valid() {
		fmt.Fprintln(stderr, "evsesec csr: --type must be CSMS, V2G or V2G20")
		return exitUsage
	}
	res := s.GenerateCSR(lt, country, org, cn, tpm)
	if asJSON {
		printJSON(stdout, res)
	} else if res.Status == store.CSRAccepted {
		fmt.Fprint(stdout, res.CSR)
	}
	if res.Status != store.CSRAccepted {
		fmt.Fprintln(stderr, "evsesec csr:", res.Status)
		return 1
	}
	return 0
}

// printable escapes control characters (a certificate's name is chosen by whoever made it: an
// ESC sequence or a line break in it must not rewrite the operator's terminal or forge a line).
func printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
