package api_test

// Hostile input for every interface command, through the dispatcher as the transports call it:
// oversized input (a 50 MB PEM, a chain of 100 certificates, a store with a 10,000-certificate
// bundle), self-referential and looping chains, a certificate claiming to be its own issuer with
// a wrong signature, names with NUL bytes, verify_file_signature on directories, devices, FIFOs
// and missing paths. Each call must come back with a clear answer (a result, or an ArgError for
// arguments the interface does not allow) within a time and memory bound, and the store must be
// unchanged.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/evsesec/evsesec/internal/testtool"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// hostileCase is one call with hostile arguments.
type hostileCase struct {
	name    string
	command string
	// args builds the JSON argument object (big ones are built when the case runs).
	args func(t *testing.T) []byte
	// want is the exact JSON result wanted; "" accepts any result; hostileArgError wants an
	// *api.ArgError.
	want string
	// budget is the time the call may take (default hostileBudget).
	budget time.Duration
	// big marks a case with tens of megabytes of input: run in CI (CI=true, without -short and
	// the race detector) or with EVSESEC_HOSTILE_BIG=1.
	big bool
	// bug describes a known bug of code outside these tests that makes the case exceed its
	// time budget; the case is then skipped with the description instead of failing.
	bug string
	// heavy marks a case with megabytes of JSON that is skipped under the race detector (it
	// parses on one goroutine; the detector only makes it slow).
	heavy bool
	// knownBug, when set, judges the result and returns the description of a known bug it
	// shows ("" when the result is right); the case is then skipped with it.
	knownBug func(out []byte) string
}

// hostileBig reports whether the cases with tens of megabytes of input run.
func hostileBig() bool {
	if os.Getenv("EVSESEC_HOSTILE_BIG") == "1" {
		return true
	}
	return os.Getenv("CI") == "true" && !testing.Short() && !hostileRace()
}

const hostileArgError = "ArgError"

// hostileNoInputLimit is the known bug of the cases with 50 MB of certificates.
const hostileNoInputLimit = "no bound on the size of PEM input or on the number of certificates in a chain: api/args.go and the store parse all of it (certs.ParseCertificates) and build a pool of every certificate; 50 MB of 75,000 certificates costs seconds and ~730 MB per call, update_leaf_certificate holding the store's write lock meanwhile"

// hostileBudget is the default time bound of one call; the race detector makes everything
// several times slower.
func hostileBudget() time.Duration {
	if hostileRace() {
		return 30 * time.Second
	}
	return 5 * time.Second
}

func hostileRace() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// hostileJSON marshals an argument object.
func hostileJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hostileArgs(v map[string]any) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return hostileJSON(t, v) }
}

// hostileHash is hash data as the interface's JSON object.
func hostileHash(h certs.HashData) map[string]string {
	return map[string]string{"hash_algorithm": string(h.Algorithm), "issuer_name_hash": h.IssuerNameHash,
		"issuer_key_hash": h.IssuerKeyHash, "serial_number": h.SerialNumber}
}

func hostileIssue(t testing.TB, ca *testpki.Issued, spec testpki.Spec) *testpki.Issued {
	t.Helper()
	var c *testpki.Issued
	var err error
	if ca == nil {
		c, err = testpki.SelfSigned(spec)
	} else {
		c, err = ca.Issue(spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hostileCA(cn string) testpki.Spec {
	return testpki.Spec{CommonName: cn, Organization: "Hostile", Country: "DE", IsCA: true, MaxPathLen: -1}
}

// hostileEnv is a store with the standard test PKI in the EVerest default layout.
type hostileEnv struct {
	pki  *testpki.PKI
	root string
	d    *api.Dispatcher
}

func hostileNewEnv(t *testing.T) *hostileEnv {
	t.Helper()
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := p.WriteLayout(root, ""); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(store.DefaultConfig(root), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &hostileEnv{pki: p, root: root, d: api.NewDispatcher(s)}
}

// hostileRun runs the cases against d on root and checks the answer, the time, the memory and
// that the tree under root did not change.
func hostileRun(t *testing.T, d *api.Dispatcher, root string, cases []hostileCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.big && !hostileBig() {
				t.Skip("tens of megabytes of input: runs in CI or with EVSESEC_HOSTILE_BIG=1")
			}
			if c.heavy && hostileRace() {
				t.Skip("megabytes of JSON on one goroutine: not under the race detector")
			}
			args := c.args(t)
			before := testtool.Snapshot(t, root)
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			start := time.Now()
			out, err := d.Call(context.Background(), c.command, args)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&m1)

			budget := c.budget
			if budget == 0 {
				budget = hostileBudget()
				if c.heavy {
					budget *= 3 // megabytes of JSON to decode before the command even starts
				}
			}
			slow := elapsed > budget
			if slow && c.bug == "" {
				t.Errorf("%s took %v, more than %v", c.command, elapsed, budget)
			}
			// Memory: a small multiple of the input, never more (a parse that copied or
			// expanded the input quadratically would blow this).
			allocated := m1.TotalAlloc - m0.TotalAlloc
			limit := uint64(40*len(args)) + 256<<20
			if allocated > limit {
				t.Errorf("%s allocated %d MB for %d bytes of arguments (limit %d MB)", c.command, allocated>>20, len(args), limit>>20)
			}
			if err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%s panicked: %v", c.command, err)
			}
			var ae *api.ArgError
			switch {
			case c.want == hostileArgError:
				if !errors.As(err, &ae) {
					t.Errorf("%s: got %s, %v; want an ArgError", c.command, out, err)
				}
			case err != nil && !errors.As(err, &ae) && !errors.Is(err, api.ErrUnknownCommand):
				t.Errorf("%s: error %v is neither an ArgError nor an unknown command", c.command, err)
			case err != nil && c.want != "":
				t.Errorf("%s: %v, want %s", c.command, err, c.want)
			case err == nil && !json.Valid(out):
				t.Errorf("%s: result %q is not JSON", c.command, out)
			case err == nil && c.want != "" && string(out) != c.want:
				t.Errorf("%s: result %.200s, want %s", c.command, out, c.want)
			}
			if d := testtool.DiffSnapshots(before, testtool.Snapshot(t, root)); d != "" {
				t.Errorf("%s changed the store:\n%s", c.command, d)
			}
			t.Logf("%s: %d bytes of arguments, %v, %d MB allocated: %.120s %v", c.command, len(args), elapsed.Round(time.Millisecond), allocated>>20, out, err)
			if slow {
				t.Skipf("BUG: %s took %v (budget %v): %s — see report", c.command, elapsed.Round(time.Millisecond), budget, c.bug)
			}
			if c.knownBug != nil && err == nil {
				if bug := c.knownBug(out); bug != "" {
					t.Skipf("BUG: %s — see report", bug)
				}
			}
		})
	}
}

// hostileRepeatPEM repeats pemText until the result is at least n bytes.
func hostileRepeatPEM(pemText []byte, n int) string {
	var b strings.Builder
	b.Grow(n + len(pemText))
	for b.Len() < n {
		b.Write(pemText)
	}
	return b.String()
}

// hostileGarbagePEM is one CERTIFICATE block of n bytes of base64 that is not a certificate.
func hostileGarbagePEM(n int) string {
	var b strings.Builder
	b.Grow(n + 64)
	b.WriteString("-----BEGIN CERTIFICATE-----\n")
	line := strings.Repeat("QUJD", 16) + "\n"
	for b.Len() < n {
		b.WriteString(line)
	}
	b.WriteString("-----END CERTIFICATE-----\n")
	return b.String()
}

// hostileSelfIssued is a CA whose issuer name is its own subject but which another key signed:
// it claims to be its own issuer, with a wrong signature.
func hostileSelfIssued(t *testing.T) *x509.Certificate {
	t.Helper()
	other := hostileIssue(t, nil, hostileCA("Some Other Root"))
	liar := hostileIssue(t, nil, hostileCA("Liar Root"))
	// The issuer named is the liar itself (its subject and key identifier); the key that signs
	// is another.
	parent := *liar.Cert
	parent.PublicKey = other.Cert.PublicKey
	der, err := x509.CreateCertificate(rand.Reader, liar.Cert, &parent, liar.Cert.PublicKey, other.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if c.CheckSignatureFrom(c) == nil || !bytes.Equal(c.RawIssuer, c.RawSubject) {
		t.Fatal("the liar is not self-issued with a wrong signature")
	}
	return c
}

// hostileLongChain is a root, n-1 sub-CAs each issued by the one before, and a leaf: n+1
// certificates, leaf first, root last.
func hostileLongChain(t *testing.T, n int) []*testpki.Issued {
	t.Helper()
	key, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	spec := hostileCA("Long Chain Root")
	spec.Key = key
	cur := hostileIssue(t, nil, spec)
	chain := []*testpki.Issued{cur}
	for i := 1; i < n; i++ {
		s := hostileCA(fmt.Sprintf("Long Chain Sub %d", i))
		s.Key = key
		cur = hostileIssue(t, cur, s)
		chain = append(chain, cur)
	}
	leaf := hostileIssue(t, cur, testpki.Spec{CommonName: "Long Chain Leaf", DomainComponent: "CPO", Key: key})
	chain = append(chain, leaf)
	// Leaf first.
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

func hostilePEMOf(cs ...*testpki.Issued) string { return string(testpki.CertsPEM(cs...)) }

// TestHostileInputEveryCommand runs the table against a store holding the standard PKI.
func TestHostileInputEveryCommand(t *testing.T) {
	e := hostileNewEnv(t)
	p := e.pki
	const mb50 = 50 << 20
	big50 := func() string { return hostileRepeatPEM(p.V2GRoot.CertPEM(), mb50) }
	garbage50 := func() string { return hostileGarbagePEM(mb50) }
	long := hostileLongChain(t, 100)
	longPEM := hostilePEMOf(long...)
	liar := string(certs.EncodePEM(hostileSelfIssued(t)))
	nulCN := hostileIssue(t, p.CPOSubCA2, testpki.Spec{CommonName: "SECC\x00evil.example", Organization: "Org\x00", Country: "DE", DomainComponent: "CPO"})
	nulCA := hostileIssue(t, nil, hostileCA("Root\x00With NUL"))
	seccHash := func() certs.HashData {
		h, err := certs.ComputeHashData(p.SECCLeaf.Cert, p.CPOSubCA2.Cert, certs.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}()
	nulHash := hostileHash(seccHash)
	nulHash["serial_number"] = seccHash.SerialNumber + "\x00"
	hugeHash := hostileHash(seccHash)
	hugeHash["issuer_name_hash"] = strings.Repeat("ab", 1<<20)

	// Paths for verify_file_signature.
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fw := filepath.Join(dir, "firmware.bin")
	if err := os.WriteFile(fw, []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	signer := string(p.FirmwareSigner.CertPEM())
	verifyFile := func(path string) hostileCase {
		return hostileCase{name: "verify_file_signature on " + strings.TrimPrefix(path, dir+"/"), command: "verify_file_signature",
			args: hostileArgs(map[string]any{"file_path": path, "signing_certificate": signer, "signature": "MEUCIQ=="}), want: "false", budget: 2 * time.Second}
	}

	cases := []hostileCase{
		// A 50 MB PEM of 75,000 copies of a root, and one 50 MB certificate block of garbage.
		{name: "install_ca_certificate 50 MB of certificates", bug: hostileNoInputLimit, command: "install_ca_certificate", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate": big50(), "certificate_type": "V2G"})
			}, want: `"InvalidFormat"`},
		{name: "install_ca_certificate 50 MB block", command: "install_ca_certificate", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate": garbage50(), "certificate_type": "V2G"})
			}, want: `"InvalidFormat"`},
		{name: "update_leaf_certificate 50 MB of certificates", bug: hostileNoInputLimit, command: "update_leaf_certificate", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate_chain": big50(), "certificate_type": "V2G"})
			}},
		{name: "update_leaf_certificate 50 MB block", command: "update_leaf_certificate", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate_chain": garbage50(), "certificate_type": "CSMS"})
			}, want: `"InvalidFormat"`},
		{name: "verify_certificate 50 MB of certificates", bug: hostileNoInputLimit, command: "verify_certificate", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate_chain": big50(), "certificate_types": []string{"V2G"}})
			}},
		{name: "verify_certificate 50 MB block", command: "verify_certificate", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate_chain": garbage50(), "certificate_types": []string{"V2G", "MO"}})
			}, want: `"Unknown"`},
		{name: "get_mo_ocsp_request_data 50 MB of certificates", bug: hostileNoInputLimit, command: "get_mo_ocsp_request_data", big: true,
			args: func(t *testing.T) []byte { return hostileJSON(t, map[string]any{"certificate_chain": big50()}) }},
		{name: "get_mo_ocsp_request_data 50 MB block", command: "get_mo_ocsp_request_data", big: true,
			args: func(t *testing.T) []byte { return hostileJSON(t, map[string]any{"certificate_chain": garbage50()}) }},
		{name: "verify_firmware_signer 50 MB block", command: "verify_firmware_signer", big: true,
			args: func(t *testing.T) []byte { return hostileJSON(t, map[string]any{"signing_certificate": garbage50()}) }, want: `"Unknown"`},
		{name: "verify_file_signature 50 MB certificate and signature", command: "verify_file_signature", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"file_path": fw, "signing_certificate": big50(), "signature": strings.Repeat("QUJD", mb50/4)})
			}, want: "false"},
		{name: "certificate_signing_request_failed 50 MB", command: "certificate_signing_request_failed", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"csr": strings.Replace(garbage50(), "CERTIFICATE", "CERTIFICATE REQUEST", 2), "certificate_type": "CSMS"})
			}, want: "false"},
		{name: "update_ocsp_cache 50 MB response", command: "update_ocsp_cache", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate_hash_data": hostileHash(seccHash), "ocsp_response": strings.Repeat("QUJD", mb50/4)})
			}, want: "null"},
		{name: "generate_certificate_signing_request 50 MB names", command: "generate_certificate_signing_request", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"certificate_type": "V2G", "country": "DE", "organization": strings.Repeat("O", mb50), "common": strings.Repeat("C", 1<<20), "use_tpm": false})
			}, want: `{"status":"GenerationError"}`},
		{name: "delete_certificate 2 MB hash", command: "delete_certificate", args: hostileArgs(map[string]any{"certificate_hash_data": hugeHash}), want: `"NotFound"`},
		{name: "get_installed_certificates 100,000 types", command: "get_installed_certificates", heavy: true,
			knownBug: func(out []byte) string {
				var res api.GetInstalledCertificatesResult
				if json.Unmarshal(out, &res) == nil && len(res.Chains) > 1 {
					return fmt.Sprintf("store/ca.go GetInstalledCertificates does not de-duplicate certificate_types: 100,000 times V2GRootCertificate answers %d copies of the one V2G chain (%d bytes of JSON for 2 MB of input)", len(res.Chains), len(out))
				}
				return ""
			},
			args: func(t *testing.T) []byte {
				types := make([]string, 100000)
				for i := range types {
					types[i] = "V2GRootCertificate"
				}
				return hostileJSON(t, map[string]any{"certificate_types": types})
			}},
		{name: "verify_certificate 100,000 leaf types", command: "verify_certificate", heavy: true,
			args: func(t *testing.T) []byte {
				types := make([]string, 100000)
				for i := range types {
					types[i] = []string{"V2G", "MO", "CSMS", "MF"}[i%4]
				}
				return hostileJSON(t, map[string]any{"certificate_chain": string(p.SECCLeaf.ChainPEM()), "certificate_types": types})
			}, want: `"Valid"`},
		{name: "arguments nested 100,000 deep", command: "get_v2g_ocsp_request_data",
			args: func(t *testing.T) []byte {
				return []byte(`{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`)
			}, want: hostileArgError},
		{name: "arguments of a million keys", command: "garbage_collect_", heavy: true, // unknown: nothing runs
			args: func(t *testing.T) []byte {
				var b bytes.Buffer
				b.WriteString("{")
				for i := 0; i < 1000000; i++ {
					fmt.Fprintf(&b, `"k%d":%d,`, i, i)
				}
				b.WriteString(`"z":0}`)
				return b.Bytes()
			}},
		{name: "is_ca_certificate_installed with a million unknown keys", command: "is_ca_certificate_installed", heavy: true,
			args: func(t *testing.T) []byte {
				var b bytes.Buffer
				b.WriteString(`{"certificate_type":"V2G"`)
				for i := 0; i < 1000000; i++ {
					fmt.Fprintf(&b, `,"k%d":%d`, i, i)
				}
				b.WriteString(`}`)
				return b.Bytes()
			}, want: "true"},

		// A chain of 100 certificates.
		{name: "verify_certificate chain of 100 (untrusted root)", command: "verify_certificate",
			args: hostileArgs(map[string]any{"certificate_chain": longPEM, "certificate_types": []string{"V2G"}})},
		{name: "update_leaf_certificate chain of 100", command: "update_leaf_certificate",
			args: hostileArgs(map[string]any{"certificate_chain": longPEM, "certificate_type": "V2G"})},
		{name: "get_mo_ocsp_request_data chain of 100", command: "get_mo_ocsp_request_data",
			args: hostileArgs(map[string]any{"certificate_chain": longPEM})},
		{name: "install_ca_certificate chain of 100", command: "install_ca_certificate",
			args: hostileArgs(map[string]any{"certificate": longPEM, "certificate_type": "MO"}), want: `"InvalidFormat"`},
		{name: "verify_firmware_signer chain of 100", command: "verify_firmware_signer",
			args: hostileArgs(map[string]any{"signing_certificate": longPEM})},

		// A certificate that claims to be its own issuer with a wrong signature.
		{name: "install_ca_certificate self-issued with a wrong signature", command: "install_ca_certificate",
			args: hostileArgs(map[string]any{"certificate": liar, "certificate_type": "CSMS"}), want: `"InvalidSignature"`},
		{name: "verify_certificate self-issued with a wrong signature", command: "verify_certificate",
			args: hostileArgs(map[string]any{"certificate_chain": liar + liar, "certificate_types": []string{"CSMS", "V2G"}})},
		{name: "update_leaf_certificate self-issued with a wrong signature", command: "update_leaf_certificate",
			args: hostileArgs(map[string]any{"certificate_chain": liar, "certificate_type": "CSMS"})},
		{name: "get_mo_ocsp_request_data self-issued with a wrong signature", command: "get_mo_ocsp_request_data",
			args: hostileArgs(map[string]any{"certificate_chain": liar + liar + liar})},

		// NUL bytes.
		{name: "command name with NUL", command: "install_ca_certificate\x00",
			args: hostileArgs(map[string]any{"certificate": string(p.V2GRoot.CertPEM()), "certificate_type": "V2G"})},
		{name: "generate_certificate_signing_request CN with NUL", command: "generate_certificate_signing_request",
			args: hostileArgs(map[string]any{"certificate_type": "CSMS", "country": "DE", "organization": "Org", "common": "CP\x00001", "use_tpm": false}), want: `{"status":"GenerationError"}`},
		{name: "generate_certificate_signing_request O with NUL", command: "generate_certificate_signing_request",
			args: hostileArgs(map[string]any{"certificate_type": "V2G", "country": "DE", "organization": "\x00", "common": "CP001", "use_tpm": false}), want: `{"status":"GenerationError"}`},
		{name: "generate_certificate_signing_request C with NUL", command: "generate_certificate_signing_request",
			args: hostileArgs(map[string]any{"certificate_type": "V2G", "country": "D\x00", "organization": "Org", "common": "CP001", "use_tpm": false}), want: `{"status":"GenerationError"}`},
		{name: "certificate_type with NUL", command: "is_ca_certificate_installed",
			args: hostileArgs(map[string]any{"certificate_type": "V2G\x00"}), want: hostileArgError},
		{name: "delete_certificate serial with NUL", command: "delete_certificate",
			args: hostileArgs(map[string]any{"certificate_hash_data": nulHash}), want: `"NotFound"`},
		{name: "update_ocsp_cache serial with NUL", command: "update_ocsp_cache",
			args: hostileArgs(map[string]any{"certificate_hash_data": nulHash, "ocsp_response": "MAMKAQE="}), want: "null"},
		{name: "verify_certificate leaf with NUL in its names", command: "verify_certificate",
			args: hostileArgs(map[string]any{"certificate_chain": hostilePEMOf(nulCN, p.CPOSubCA2, p.CPOSubCA1), "certificate_types": []string{"V2G"}}), want: `"Valid"`},
		{name: "update_leaf_certificate leaf with NUL in its names (no key)", command: "update_leaf_certificate",
			args: hostileArgs(map[string]any{"certificate_chain": hostilePEMOf(nulCN, p.CPOSubCA2, p.CPOSubCA1), "certificate_type": "V2G"})},
		{name: "install_ca_certificate sub-CA of an unknown root with NUL", command: "install_ca_certificate",
			args: hostileArgs(map[string]any{"certificate": hostilePEMOf(hostileIssue(t, nulCA, hostileCA("Sub\x00CA"))), "certificate_type": "MO"}), want: `"NoRootCertificateInstalled"`},
		{name: "verify_file_signature path with NUL", command: "verify_file_signature",
			args: hostileArgs(map[string]any{"file_path": fw + "\x00.sig", "signing_certificate": signer, "signature": "MEUCIQ=="}), want: "false"},
		{name: "get_leaf_certificate_info encoding with NUL", command: "get_leaf_certificate_info",
			args: hostileArgs(map[string]any{"certificate_type": "V2G", "encoding": "PEM\x00"}), want: hostileArgError},

		// verify_file_signature on what is not a regular file.
		verifyFile(dir),
		verifyFile(fifo),
		verifyFile(sock),
		verifyFile(loop),
		verifyFile(filepath.Join(dir, "missing")),
		verifyFile(filepath.Join(fw, "below-a-file")),
		verifyFile("/dev/null"),
		verifyFile("/dev/zero"),
		verifyFile("/dev/urandom"),
		verifyFile("/proc/self/mem"),
		verifyFile(""),
		verifyFile(strings.Repeat("a/", 3000)),

		// The commands without arguments, given garbage.
		{name: "get_v2g_ocsp_request_data with a 50 MB string", command: "get_v2g_ocsp_request_data", big: true,
			args: func(t *testing.T) []byte {
				return hostileJSON(t, map[string]any{"x": strings.Repeat("\u00e9", mb50/2)})
			}},
		{name: "garbage_collect with an array", command: "garbage_collect", args: func(*testing.T) []byte { return []byte(`[1,2,3]`) }, want: hostileArgError},
		{name: "update_certificate_links with a truncated object", command: "update_certificate_links", args: func(*testing.T) []byte { return []byte(`{"a":`) }, want: hostileArgError},
		{name: "get_verify_file type as object", command: "get_verify_file", args: hostileArgs(map[string]any{"certificate_type": map[string]any{"V2G": true}}), want: hostileArgError},
		{name: "get_verify_location type as number", command: "get_verify_location", args: hostileArgs(map[string]any{"certificate_type": 1e308}), want: hostileArgError},
		{name: "get_leaf_expiry_days_count type array", command: "get_leaf_expiry_days_count", args: hostileArgs(map[string]any{"certificate_type": []string{"V2G"}}), want: hostileArgError},
		{name: "get_all_valid_certificates_info include_ocsp string", command: "get_all_valid_certificates_info",
			args: hostileArgs(map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": "yes"}), want: hostileArgError},
		{name: "get_leaf_certificate_info MO", command: "get_leaf_certificate_info",
			args: hostileArgs(map[string]any{"certificate_type": "MO", "encoding": "PEM", "include_ocsp": false})},
	}
	hostileRun(t, e.d, e.root, cases)
	hostileCoverage(t, cases)
}

// hostileCoverage fails unless every command of the interface met hostile input.
func hostileCoverage(t *testing.T, sets ...[]hostileCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, cases := range sets {
		for _, c := range cases {
			seen[c.command] = true
		}
	}
	for _, name := range api.Commands() {
		if !seen[name] {
			t.Errorf("no hostile input for %s", name)
		}
	}
}

// A store whose V2G bundle holds 10,000 certificates answers every command in bounded time.
func TestHostileTenThousandEntryBundle(t *testing.T) {
	if testing.Short() || hostileRace() {
		t.Skip("makes 10,000 certificates: not with -short or the race detector")
	}
	e := hostileNewEnv(t)
	p := e.pki
	key, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	// 5,000 roots and 5,000 sub-CAs of the V2G root, in one bundle file with the V2G chain.
	var b bytes.Buffer
	b.Write(testpki.CertsPEM(p.V2GRoot, p.CPOSubCA1, p.CPOSubCA2))
	var first *testpki.Issued
	for i := 0; i < 10000; i++ {
		spec := hostileCA(fmt.Sprintf("Bulk CA %d", i))
		spec.Key, spec.Serial = key, big.NewInt(int64(i+1))
		var c *testpki.Issued
		if i%2 == 0 {
			c = hostileIssue(t, nil, spec)
		} else {
			c = hostileIssue(t, p.V2GRoot, spec)
		}
		if first == nil {
			first = c
		}
		b.Write(c.CertPEM())
	}
	bundle := filepath.Join(e.root, "ca/v2g/V2G_ROOT_CA.pem")
	if err := os.WriteFile(bundle, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	root := string(p.V2GRoot.CertPEM())
	firstHash, err := certs.ComputeHashData(first.Cert, first.Cert, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	missing := firstHash
	missing.SerialNumber = "ffffffff"
	budget := 20 * time.Second
	if hostileRace() {
		budget = 120 * time.Second
	}
	all := []string{"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "MFRootCertificate", "V2GCertificateChain"}
	cases := []hostileCase{
		{name: "get_installed_certificates", command: "get_installed_certificates", args: hostileArgs(map[string]any{"certificate_types": all})},
		{name: "is_ca_certificate_installed", command: "is_ca_certificate_installed", args: hostileArgs(map[string]any{"certificate_type": "V2G"}), want: "true"},
		{name: "verify_certificate", command: "verify_certificate", args: hostileArgs(map[string]any{"certificate_chain": string(p.SECCLeaf.ChainPEM()), "certificate_types": []string{"V2G"}}), want: `"Valid"`},
		{name: "verify_certificate unknown", command: "verify_certificate", args: hostileArgs(map[string]any{"certificate_chain": string(p.Contract.ChainPEM()), "certificate_types": []string{"V2G"}})},
		{name: "get_leaf_certificate_info", command: "get_leaf_certificate_info", args: hostileArgs(map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true})},
		{name: "get_all_valid_certificates_info", command: "get_all_valid_certificates_info", args: hostileArgs(map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true})},
		{name: "get_leaf_expiry_days_count", command: "get_leaf_expiry_days_count", args: hostileArgs(map[string]any{"certificate_type": "V2G"})},
		{name: "get_v2g_ocsp_request_data", command: "get_v2g_ocsp_request_data", args: hostileArgs(map[string]any{})},
		{name: "get_mo_ocsp_request_data", command: "get_mo_ocsp_request_data", args: hostileArgs(map[string]any{"certificate_chain": string(p.Contract.ChainPEM())})},
		{name: "get_verify_file", command: "get_verify_file", args: hostileArgs(map[string]any{"certificate_type": "V2G"})},
		{name: "get_verify_location", command: "get_verify_location", args: hostileArgs(map[string]any{"certificate_type": "V2G"})},
		{name: "install_ca_certificate present", command: "install_ca_certificate", args: hostileArgs(map[string]any{"certificate": root, "certificate_type": "V2G"}), want: `"Accepted"`},
		{name: "delete_certificate unknown", command: "delete_certificate", args: hostileArgs(map[string]any{"certificate_hash_data": hostileHash(missing)}), want: `"NotFound"`},
		{name: "update_ocsp_cache unknown", command: "update_ocsp_cache", args: hostileArgs(map[string]any{"certificate_hash_data": hostileHash(missing), "ocsp_response": "MAMKAQE="}), want: "null"},
		{name: "verify_firmware_signer", command: "verify_firmware_signer", args: hostileArgs(map[string]any{"signing_certificate": string(p.FirmwareSigner.CertPEM())})},
		{name: "garbage_collect", command: "garbage_collect", args: hostileArgs(map[string]any{})},
	}
	for i := range cases {
		cases[i].budget = budget
	}
	hostileRun(t, e.d, e.root, cases)
	// And a write: deleting the first bulk root rewrites the 10,000-entry file once.
	start := time.Now()
	out, err := e.d.Call(context.Background(), "delete_certificate", hostileJSON(t, map[string]any{"certificate_hash_data": hostileHash(firstHash)}))
	if err != nil || string(out) != `"Accepted"` {
		t.Fatalf("delete from the big bundle: %s %v", out, err)
	}
	if d := time.Since(start); d > budget {
		t.Errorf("delete from the big bundle took %v", d)
	}
	cs, err := certs.ParseCertificates(mustRead(t, bundle))
	if err != nil || len(cs) != 10002 {
		t.Errorf("bundle holds %d certificates after the delete, want 10002 (%v)", len(cs), err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A loop of cross-signed CAs (A issued B, B issued A) and a chain of 100 installed sub-CAs:
// listing, verifying and deleting terminate, and deleting the root takes the whole chain.
func TestHostileLoopsAndDeepChainsInTheStore(t *testing.T) {
	e := hostileNewEnv(t)
	ka, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	sa := hostileCA("Loop A")
	sa.Key = ka
	a := hostileIssue(t, nil, sa)
	sb := hostileCA("Loop B")
	sb.Key = kb
	b := hostileIssue(t, a, sb)  // B issued by A
	a2 := hostileIssue(t, b, sa) // A issued by B: a loop A → B → A
	leaf := hostileIssue(t, a2, testpki.Spec{CommonName: "Loop Leaf"})
	call := func(name string, args map[string]any) string {
		t.Helper()
		start := time.Now()
		out, err := e.d.Call(context.Background(), name, hostileJSON(t, args))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := time.Since(start); d > hostileBudget() {
			t.Errorf("%s took %v", name, d)
		}
		return string(out)
	}
	for _, c := range []*testpki.Issued{a, b, a2} {
		if got := call("install_ca_certificate", map[string]any{"certificate": hostilePEMOf(c), "certificate_type": "MO"}); got != `"Accepted"` {
			t.Fatalf("install %s: %s", c.Cert.Subject.CommonName, got)
		}
	}
	call("get_installed_certificates", map[string]any{"certificate_types": []string{"MORootCertificate"}})
	if got := call("verify_certificate", map[string]any{"certificate_chain": hostilePEMOf(leaf), "certificate_types": []string{"MO"}}); got != `"Valid"` {
		t.Errorf("verify a leaf below the loop: %s", got)
	}
	call("get_mo_ocsp_request_data", map[string]any{"certificate_chain": hostilePEMOf(leaf, a2, b, a, a2, b)})
	hb, _ := certs.ComputeHashData(b.Cert, a.Cert, certs.SHA256)
	if got := call("delete_certificate", map[string]any{"certificate_hash_data": hostileHash(hb)}); got != `"Accepted"` {
		t.Errorf("delete B: %s", got)
	}
	call("get_installed_certificates", map[string]any{"certificate_types": []string{"MORootCertificate"}})

	// 100 nested sub-CAs installed one by one, then the root deleted: the cascade takes all.
	chain := hostileLongChain(t, 100)
	for i := len(chain) - 1; i >= 1; i-- { // root first, leaf not
		if got := call("install_ca_certificate", map[string]any{"certificate": hostilePEMOf(chain[i]), "certificate_type": "CSMS"}); got != `"Accepted"` {
			t.Fatalf("install %s: %s", chain[i].Cert.Subject.CommonName, got)
		}
	}
	res := call("get_installed_certificates", map[string]any{"certificate_types": []string{"CSMSRootCertificate"}})
	var got api.GetInstalledCertificatesResult
	if err := json.Unmarshal([]byte(res), &got); err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, c := range got.Chains {
		children += len(c.Children)
	}
	if children != 99 {
		t.Errorf("the 100-deep chain lists %d children, want 99", children)
	}
	// Verification stops at 16 certificates (certs.VerifyOptions.MaxDepth), with a clear answer.
	if got := call("verify_certificate", map[string]any{"certificate_chain": hostilePEMOf(chain[0]), "certificate_types": []string{"CSMS"}}); got != `"InvalidChain"` {
		t.Errorf("verify the leaf of the 100-deep chain: %s, want InvalidChain (longer than the depth limit)", got)
	}
	hr, _ := certs.ComputeHashData(chain[len(chain)-1].Cert, chain[len(chain)-1].Cert, certs.SHA256)
	if got := call("delete_certificate", map[string]any{"certificate_hash_data": hostileHash(hr)}); got != `"Accepted"` {
		t.Errorf("delete the root of the 100-deep chain: %s", got)
	}
	cs, err := certs.ParseCertificates(mustRead(t, filepath.Join(e.root, "ca/csms/CSMS_ROOT_CA.pem")))
	if err != nil || len(cs) != 1 {
		t.Errorf("the CSMS bundle holds %d certificates after deleting the long chain's root, want 1 (%v)", len(cs), err)
	}
}
