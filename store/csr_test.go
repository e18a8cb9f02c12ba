package store_test

// generate_certificate_signing_request, certificate_signing_request_failed and the pending CSR
// key: subject encoding, key algorithms, key files (0600, plain or encrypted PKCS#8, loadable by
// OpenSSL), rejection of bad input, and the full CSR → OpenSSL CA → update_leaf_certificate →
// selection round trip. Reference scenarios: T08, T38 (the parts about the CSR itself).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/store"
)

var (
	seccKeyName = regexp.MustCompile(`^client/cso/SECC_LEAF_([0-9]{8}T[0-9]{6}Z_[0-9a-f]{8})\.key$`)
	csmsKeyName = regexp.MustCompile(`^client/csms/CSMS_LEAF_([0-9]{8}T[0-9]{6}Z_[0-9a-f]{8})\.key$`)
)

// nameAttrSET is one RDN of a raw name, with the values' string types kept.
type nameAttrSET []struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type nameAttr struct {
	oid string
	tag int
	val string
}

// nameAttrs decodes a DER name into its attributes in order, one per RDN.
func nameAttrs(t *testing.T, raw []byte) []nameAttr {
	t.Helper()
	var rdns []nameAttrSET
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		t.Fatalf("subject does not decode: %v", err)
	}
	var out []nameAttr
	for _, rdn := range rdns {
		if len(rdn) != 1 {
			t.Fatalf("multi-valued RDN %v", rdn)
		}
		out = append(out, nameAttr{rdn[0].Type.String(), rdn[0].Value.Tag, string(rdn[0].Value.Bytes)})
	}
	return out
}

// generateCSR runs GenerateCSR and returns the CSR and the path of the one key file it wrote.
func (e *env) generateCSR(lt store.LeafType, c, o, cn string) (string, string) {
	e.t.Helper()
	before := snapshot(e.t, e.root)
	res := e.s.GenerateCSR(lt, c, o, cn, false)
	if res.Status != store.CSRAccepted || !strings.HasPrefix(res.CSR, "-----BEGIN CERTIFICATE REQUEST-----\n") {
		e.t.Fatalf("generate_certificate_signing_request(%s) = %+v\n%s", lt, res, e.logs)
	}
	var added []string
	for _, p := range newFiles(e.t, e.root, before) {
		if fi, err := os.Lstat(e.path(p)); err != nil || !fi.IsDir() {
			added = append(added, p)
		}
	}
	if len(added) != 1 {
		e.t.Fatalf("CSR wrote %v, want one key file", added)
	}
	return res.CSR, e.path(added[0])
}

func TestGenerateCSRSubjectExtensionsAndKeyFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	const (
		oidC  = "2.5.4.6"
		oidO  = "2.5.4.10"
		oidCN = "2.5.4.3"
		oidDC = "0.9.2342.19200300.100.1.25"
	)
	for _, c := range []struct {
		lt      store.LeafType
		keyName *regexp.Regexp
		want    []nameAttr
		subject string
	}{
		{store.LeafV2G, seccKeyName, []nameAttr{{oidC, asn1.TagPrintableString, "DE"}, {oidO, asn1.TagUTF8String, "Müller & Söhne"},
			{oidCN, asn1.TagUTF8String, "SECCCert"}, {oidDC, asn1.TagIA5String, "CPO"}}, "DC=CPO,CN=SECCCert"},
		// T08: C, O, CN; a CSMS CSR has no DC (the reference put DC=CPO into every CSR).
		{store.LeafCSMS, csmsKeyName, []nameAttr{{oidC, asn1.TagPrintableString, "DE"}, {oidO, asn1.TagUTF8String, "PionixDE"},
			{oidCN, asn1.TagUTF8String, "pionix_01"}}, "CN=pionix_01,O=PionixDE,C=DE"},
	} {
		t.Run(string(c.lt), func(t *testing.T) {
			csrPEM, keyPath := e.generateCSR(c.lt, c.want[0].val, c.want[1].val, c.want[2].val)
			rel, _ := filepath.Rel(e.root, keyPath)
			if !c.keyName.MatchString(filepath.ToSlash(rel)) {
				t.Fatalf("key file %s", rel)
			}
			requireMode(t, keyPath, 0o600)
			if data := string(readFile(t, keyPath)); !strings.HasPrefix(data, "-----BEGIN PRIVATE KEY-----\n") {
				t.Fatalf("key file without a password is not plain PKCS#8:\n%.40s", data)
			}
			csr := parseCSR(t, csrPEM)
			if err := csr.CheckSignature(); err != nil {
				t.Fatal(err)
			}
			if csr.Version != 0 || csr.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Fatalf("version %d, signature %v", csr.Version, csr.SignatureAlgorithm)
			}
			if got := nameAttrs(t, csr.RawSubject); !slices.Equal(got, c.want) {
				t.Fatalf("subject %+v\nwant    %+v", got, c.want)
			}
			pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() {
				t.Fatalf("CSR key %T, want P-256", csr.PublicKey)
			}
			if k := loadKey(t, keyPath, ""); !keys.PublicKeysEqual(k.Public(), csr.PublicKey) {
				t.Fatal("the key file does not hold the CSR's key")
			}
			// keyUsage digitalSignature+keyAgreement (not critical), basicConstraints critical CA:FALSE.
			var ku, bc bool
			for _, ext := range csr.Extensions {
				switch ext.Id.String() {
				case "2.5.29.15":
					var bits asn1.BitString
					if _, err := asn1.Unmarshal(ext.Value, &bits); err != nil || ext.Critical || bits.At(0) != 1 || bits.At(4) != 1 || bits.At(2) != 0 || bits.At(5) != 0 {
						t.Fatalf("keyUsage %x critical=%v", ext.Value, ext.Critical)
					}
					ku = true
				case "2.5.29.19":
					if !ext.Critical || string(ext.Value) != "\x30\x00" {
						t.Fatalf("basicConstraints %x critical=%v", ext.Value, ext.Critical)
					}
					bc = true
				case "2.5.29.17":
					t.Fatal("subjectAltName without csr_dns_names/csr_ip_addresses")
				}
			}
			if !ku || !bc {
				t.Fatalf("extensions %+v: want keyUsage and basicConstraints", csr.Extensions)
			}
			if !slices.Contains(e.s.PendingCSRKeys(), keyPath) {
				t.Fatalf("pending keys %v lack %s", e.s.PendingCSRKeys(), keyPath)
			}

			// OpenSSL agrees: the self-signature verifies, the subject reads as expected, and
			// the key file holds the CSR's key.
			out := runOpenSSL(t, []byte(csrPEM), "req", "-verify", "-noout", "-subject", "-nameopt", "RFC2253,-esc_msb")
			if !strings.Contains(out, "verify OK") || !strings.Contains(out, c.subject) {
				t.Fatalf("openssl req -verify: %s", out)
			}
			keyPub := runOpenSSL(t, nil, "pkey", "-in", keyPath, "-pubout")
			csrPub := runOpenSSL(t, []byte(csrPEM), "req", "-noout", "-pubkey")
			if strings.TrimSpace(keyPub) != strings.TrimSpace(csrPub) {
				t.Fatal("openssl: key file and CSR hold different keys")
			}
		})
	}
	if got := len(e.s.PendingCSRKeys()); got != 2 {
		t.Fatalf("%d pending keys, want 2", got)
	}
	requireNoSecretsLogged(t, e.logs.String(), "", e.s.PendingCSRKeys()...)
}

// With private_key_password the CSR key is encrypted PKCS#8 that `openssl pkey -passin` reads,
// and nothing else does.
func TestGenerateCSREncryptedKeyLoadsInOpenSSL(t *testing.T) {
	t.Parallel()
	const pw = "s3cret pass"
	e := newEnv(t, envOptions{password: pw})
	csrPEM, keyPath := e.generateCSR(store.LeafV2G, "DE", "EVerest", "SECCCert")
	requireMode(t, keyPath, 0o600)
	if data := string(readFile(t, keyPath)); !strings.HasPrefix(data, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n") {
		t.Fatalf("key file with a password is not encrypted PKCS#8:\n%.50s", data)
	}
	keyPub := runOpenSSL(t, nil, "pkey", "-in", keyPath, "-passin", "pass:"+pw, "-pubout")
	csrPub := runOpenSSL(t, []byte(csrPEM), "req", "-noout", "-pubkey")
	if strings.TrimSpace(keyPub) != strings.TrimSpace(csrPub) {
		t.Fatal("openssl: key file and CSR hold different keys")
	}
	for _, bad := range []string{"pass:", "pass:wrong"} {
		if _, err := tryOpenSSL(t, nil, "pkey", "-in", keyPath, "-passin", bad, "-noout"); err == nil {
			t.Fatalf("encrypted key loads with -passin %s", bad)
		}
	}
	requireNoSecretsLogged(t, e.logs.String(), pw, keyPath)
}

// Key algorithm per leaf type (the reference always made P-256), with OpenSSL's aliases.
func TestGenerateCSRKeyAlgorithms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		csmsAlg, seccAlg string
		lt               store.LeafType
		check            func(pub any) bool
		sig              x509.SignatureAlgorithm
	}{
		{"P-384", "", store.LeafCSMS, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() }, x509.ECDSAWithSHA384},
		{"secp521r1", "", store.LeafCSMS, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P521() }, x509.ECDSAWithSHA512},
		{"RSA-2048", "", store.LeafCSMS, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 2048 }, x509.SHA256WithRSA},
		{"", "prime256v1", store.LeafV2G, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() }, x509.ECDSAWithSHA256},
		{"", "P-384", store.LeafV2G, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() }, x509.ECDSAWithSHA384},
	}
	for _, c := range cases {
		t.Run(c.csmsAlg+c.seccAlg, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{noLayout: true, config: func(cfg *store.Config) {
				if c.csmsAlg != "" {
					cfg.CSMSKeyAlgorithm = c.csmsAlg
				}
				if c.seccAlg != "" && c.seccAlg != "prime256v1" {
					// Other SECC keys than P-256 are for ISO 15118-20; the -2 profile refuses them
					// at Open.
					cfg.SECCLeafProfile = "none"
				}
				if c.seccAlg != "" {
					cfg.SECCKeyAlgorithm = c.seccAlg
				}
			}})
			csrPEM, keyPath := e.generateCSR(c.lt, "DE", "EVerest", "CP001")
			csr := parseCSR(t, csrPEM)
			if !c.check(csr.PublicKey) || csr.SignatureAlgorithm != c.sig {
				t.Fatalf("CSR key %T signed with %v", csr.PublicKey, csr.SignatureAlgorithm)
			}
			if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
				// RSA keys cannot agree keys: keyUsage is digitalSignature+keyEncipherment.
				for _, ext := range csr.Extensions {
					if ext.Id.String() == "2.5.29.15" {
						var bits asn1.BitString
						asn1.Unmarshal(ext.Value, &bits)
						if bits.At(0) != 1 || bits.At(2) != 1 || bits.At(4) != 0 {
							t.Fatalf("RSA keyUsage %x", ext.Value)
						}
					}
				}
			}
			if !keys.PublicKeysEqual(loadKey(t, keyPath, "").Public(), csr.PublicKey) {
				t.Fatal("key file does not hold the CSR's key")
			}
			requireMode(t, keyPath, 0o600)
			if out := runOpenSSL(t, []byte(csrPEM), "req", "-verify", "-noout"); !strings.Contains(out, "verify OK") {
				t.Fatalf("openssl req -verify: %s", out)
			}
		})
	}
}

// SAN entries from the config go into every CSR; a bad entry is an error, never dropped.
func TestGenerateCSRSubjectAltNameFromConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noLayout: true, config: func(cfg *store.Config) {
		cfg.CSRDNSNames = []string{"cs001.example.com"}
		cfg.CSRIPAddresses = []string{"192.0.2.10", "2001:db8::1"}
	}})
	csrPEM, _ := e.generateCSR(store.LeafV2G, "DE", "EVerest", "SECCCert")
	csr := parseCSR(t, csrPEM)
	if !slices.Equal(csr.DNSNames, []string{"cs001.example.com"}) || len(csr.IPAddresses) != 2 ||
		!csr.IPAddresses[0].Equal(net.ParseIP("192.0.2.10")) || !csr.IPAddresses[1].Equal(net.ParseIP("2001:db8::1")) {
		t.Fatalf("SAN: DNS %v IP %v", csr.DNSNames, csr.IPAddresses)
	}
	text := runOpenSSL(t, []byte(csrPEM), "req", "-noout", "-text")
	if !strings.Contains(text, "DNS:cs001.example.com") || !strings.Contains(text, "IP Address:192.0.2.10") {
		t.Fatalf("openssl does not see the SAN:\n%s", text)
	}

	bad := newEnv(t, envOptions{noLayout: true, config: func(cfg *store.Config) { cfg.CSRIPAddresses = []string{"192.0.2.300"} }})
	before := snapshot(t, bad.root)
	if got := bad.s.GenerateCSR(store.LeafV2G, "DE", "EVerest", "SECCCert", false); got.Status != store.CSRGenerationError || got.CSR != "" {
		t.Fatalf("bad csr_ip_addresses: %+v, want GenerationError", got)
	}
	requireUnchanged(t, bad.root, before, "CSR with a bad configured IP")
	if len(bad.s.PendingCSRKeys()) != 0 {
		t.Fatal("a failed CSR left a pending key")
	}
}

// Bad input is rejected with a status and leaves nothing behind (the reference dropped bad
// subject fields silently and made a software key for use_tpm).
func TestGenerateCSRBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	before := snapshot(t, e.root)
	long := strings.Repeat("é", 65)
	cases := []struct {
		name             string
		lt               store.LeafType
		country, org, cn string
		tpm              bool
		want             store.CSRStatus
	}{
		{"MF", store.LeafMF, "DE", "O", "CN", false, store.CSRInvalidRequestedType},
		{"MO", store.LeafMO, "DE", "O", "CN", false, store.CSRInvalidRequestedType},
		{"unknown type", store.LeafType("SECC"), "DE", "O", "CN", false, store.CSRInvalidRequestedType},
		{"three-letter country", store.LeafV2G, "DEU", "O", "CN", false, store.CSRGenerationError},
		{"empty country", store.LeafV2G, "", "O", "CN", false, store.CSRGenerationError},
		{"digit in country", store.LeafV2G, "D1", "O", "CN", false, store.CSRGenerationError},
		{"non-ASCII country", store.LeafV2G, "Ü", "O", "CN", false, store.CSRGenerationError},
		{"empty organization", store.LeafV2G, "DE", "", "CN", false, store.CSRGenerationError},
		{"empty common name", store.LeafCSMS, "DE", "O", "", false, store.CSRGenerationError},
		{"65-character common name", store.LeafV2G, "DE", "O", long, false, store.CSRGenerationError},
		{"65-character organization", store.LeafCSMS, "DE", long, "CN", false, store.CSRGenerationError},
		{"invalid UTF-8", store.LeafV2G, "DE", "O", "\xff\xfe", false, store.CSRGenerationError},
		{"NUL in common name", store.LeafV2G, "DE", "O", "CP\x00001", false, store.CSRGenerationError},
		{"use_tpm without a TPM", store.LeafV2G, "DE", "O", "CN", true, store.CSRKeyGenError},
		{"use_tpm without a TPM, CSMS", store.LeafCSMS, "DE", "O", "CN", true, store.CSRKeyGenError},
	}
	for _, c := range cases {
		got := e.s.GenerateCSR(c.lt, c.country, c.org, c.cn, c.tpm)
		if got.Status != c.want || got.CSR != "" {
			t.Errorf("%s: %+v, want %s without CSR", c.name, got, c.want)
		}
		requireUnchanged(t, e.root, before, c.name)
	}
	if p := e.s.PendingCSRKeys(); len(p) != 0 {
		t.Fatalf("rejected CSRs left pending keys %v", p)
	}

	// A bad key algorithm in the config is a clear error when the store opens, not a surprise at
	// the first CSR.
	bad := e.cfg
	bad.SECCKeyAlgorithm = "P-999"
	if _, err := store.Open(bad, store.Options{}); err == nil || !strings.Contains(err.Error(), "secc_key_algorithm") {
		t.Fatalf("secc_key_algorithm P-999: Open error %v, want one naming secc_key_algorithm", err)
	}
	requireUnchanged(t, e.root, before, "a store with a bad configured algorithm")

	// The boundaries are accepted: 64 characters, lower-case country (PrintableString).
	e.cfg.SECCKeyAlgorithm = "P-256"
	e.open()
	csrPEM, _ := e.generateCSR(store.LeafV2G, "de", strings.Repeat("ü", 64), strings.Repeat("x", 64))
	if csr := parseCSR(t, csrPEM); csr.Subject.CommonName != strings.Repeat("x", 64) || csr.Subject.Organization[0] != strings.Repeat("ü", 64) {
		t.Fatalf("subject %v", csr.Subject)
	}

	// JSON path: argument errors never reach the store.
	before = snapshot(t, e.root)
	full := map[string]any{"certificate_type": "V2G", "country": "DE", "organization": "O", "common": "CN", "use_tpm": false}
	for _, drop := range []string{"certificate_type", "country", "organization", "common", "use_tpm"} {
		args := map[string]any{}
		for k, v := range full {
			if k != drop {
				args[k] = v
			}
		}
		if err := e.call("generate_certificate_signing_request", args, nil); !isArgError(err) {
			t.Errorf("without %s: err %v, want an argument error", drop, err)
		}
	}
	for k, v := range map[string]any{"use_tpm": "true", "certificate_type": "SECC", "country": 49, "common": []string{"a"}} {
		args := map[string]any{}
		for k2, v2 := range full {
			args[k2] = v2
		}
		args[k] = v
		if err := e.call("generate_certificate_signing_request", args, nil); !isArgError(err) {
			t.Errorf("%s=%v: err %v, want an argument error", k, v, err)
		}
	}
	var res store.CSRResult
	if err := e.call("generate_certificate_signing_request", map[string]any{"certificate_type": "MO", "country": "DE", "organization": "O", "common": "CN", "use_tpm": false}, &res); err != nil || res.Status != store.CSRInvalidRequestedType || res.CSR != "" {
		t.Fatalf("MO via JSON: %+v, %v", res, err)
	}
	if err := e.call("generate_certificate_signing_request", map[string]any{"certificate_type": "V2G", "country": "DE", "organization": "O", "common": "CN", "use_tpm": true}, &res); err != nil || res.Status != store.CSRKeyGenError {
		t.Fatalf("use_tpm via JSON: %+v, %v", res, err)
	}
	requireUnchanged(t, e.root, before, "bad generate_certificate_signing_request arguments")
}

// The whole OCPP flow with OpenSSL as the CA: our CSR verifies in `openssl req -verify`, the
// certificate `openssl x509 -req -copy_extensions copy` makes for it installs, is named after its
// key, and is the leaf the station uses. With separate key directories too.
func TestCSRSignedByOpenSSLInstallsAndIsSelected(t *testing.T) {
	t.Parallel()
	const pw = "123456"
	for _, lt := range []store.LeafType{store.LeafV2G, store.LeafCSMS} {
		t.Run(string(lt), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{password: pw, config: func(cfg *store.Config) {
				if lt == store.LeafCSMS {
					cfg.CSMSLeafKeyDir = "client/csms_keys"
				}
			}})
			csrPEM, keyPath := e.generateCSR(lt, "DE", "EVerest test", "CP001")
			if out := runOpenSSL(t, []byte(csrPEM), "req", "-verify", "-noout"); !strings.Contains(out, "verify OK") {
				t.Fatalf("openssl req -verify: %s", out)
			}
			csrPath := filepath.Join(t.TempDir(), "station.csr")
			writeFile(t, csrPath, []byte(csrPEM), 0o644)
			caCert, caKey, chainPEM, certDir := e.layout.CPOSubCA2Cert, e.layout.CPOSubCA2Key, string(e.pki.CPOSubCA2.CertPEM())+string(e.pki.CPOSubCA1.CertPEM()), "client/cso"
			if lt == store.LeafCSMS {
				caCert, caKey, chainPEM, certDir = e.layout.CSMSRootCert, e.layout.CSMSRootKey, "", "client/csms"
			}
			certPEM := runOpenSSL(t, nil, "x509", "-req", "-in", csrPath, "-CA", caCert, "-CAkey", caKey, "-passin", "pass:"+pw,
				"-copy_extensions", "copy", "-days", "1000", "-set_serial", "0x1234")
			e.clock.Set(time.Now().Add(time.Minute)) // openssl dated the certificate with its own clock

			before := snapshot(t, e.root)
			if got := e.s.UpdateLeafCertificate(certPEM+chainPEM, lt); got != store.InstallAccepted {
				t.Fatalf("update_leaf_certificate = %s\n%s", got, e.logs)
			}
			if p := e.s.PendingCSRKeys(); len(p) != 0 {
				t.Fatalf("the key is still pending after its certificate arrived: %v", p)
			}
			// The leaf's files carry its key's name.
			stem := strings.TrimSuffix(filepath.Base(keyPath), ".key")
			wantFiles := []string{certDir + "/" + stem + ".pem"}
			if lt == store.LeafV2G {
				wantFiles = []string{certDir + "/CPO_CERT_SECC_LEAF_CHAIN_" + strings.TrimPrefix(stem, "SECC_LEAF_") + ".pem", certDir + "/" + stem + ".pem"}
			}
			if added := newFiles(t, e.root, before); !slices.Equal(added, wantFiles) {
				t.Fatalf("added %v, want %v", added, wantFiles)
			}
			info := leafInfo(t, e, lt)
			if info.Key != keyPath || info.CertificateSingle != e.path(wantFiles[len(wantFiles)-1]) || info.Password != pw {
				t.Fatalf("selected %+v, want key %s", *info, keyPath)
			}
			// OpenSSL accepts what the consumer gets: the chain against the domain's bundle, and
			// the key as the certificate's key.
			bundle := e.layout.V2GBundle
			if lt == store.LeafCSMS {
				bundle = e.layout.CSMSBundle
			}
			if out := runOpenSSL(t, nil, "verify", "-CAfile", bundle, "-untrusted", info.Certificate, info.Certificate); !strings.Contains(out, ": OK") {
				t.Fatalf("openssl verify: %s", out)
			}
			keyPub := runOpenSSL(t, nil, "pkey", "-in", info.Key, "-passin", "pass:"+pw, "-pubout")
			certPub := runOpenSSL(t, nil, "x509", "-in", info.CertificateSingle, "-noout", "-pubkey")
			if strings.TrimSpace(keyPub) != strings.TrimSpace(certPub) {
				t.Fatal("openssl: the selected key is not the certificate's key")
			}
			// The key of a leaf is never garbage: GC long after the CSR expiry keeps it.
			e.clock.Advance(24 * time.Hour)
			if rep := e.s.GarbageCollect(); len(rep.ExpiredCSRKeys) != 0 {
				t.Fatalf("GC removed %v", rep.ExpiredCSRKeys)
			}
			e.clock.Advance(24 * time.Hour)
			e.s.GarbageCollect()
			if got := leafInfo(t, e, lt); got.Key != keyPath {
				t.Fatalf("after GC: %+v", *got)
			}
			requireNoSecretsLogged(t, e.logs.String(), pw, keyPath)
		})
	}
}

// certificate_signing_request_failed drops the pending key at once (the reference left it until
// expiry), only that key, also after a restart, and never a key that has a certificate.
func TestCSRFailedRemovesPendingKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	csr1, key1 := e.generateCSR(store.LeafV2G, "DE", "EVerest", "SECC1")
	csr2, key2 := e.generateCSR(store.LeafV2G, "DE", "EVerest", "SECC2")
	before := snapshot(t, e.root)
	for _, c := range []struct {
		name string
		csr  string
		lt   store.LeafType
	}{
		{"garbage", "not a CSR", store.LeafV2G},
		{"empty", "", store.LeafV2G},
		{"wrong leaf type", csr1, store.LeafCSMS},
		{"MO", csr1, store.LeafMO},
		{"a certificate instead of a CSR", string(readFile(t, e.layout.SECCLeafCert)), store.LeafV2G},
	} {
		if e.s.CertificateSigningRequestFailed(c.csr, c.lt) {
			t.Errorf("%s: reported a removed key", c.name)
		}
		requireUnchanged(t, e.root, before, c.name)
	}
	if !e.s.CertificateSigningRequestFailed(csr1, store.LeafV2G) {
		t.Fatal("certificate_signing_request_failed did not remove the key")
	}
	added, removed, changed := treeDiff(before, snapshot(t, e.root))
	if rel, _ := filepath.Rel(e.root, key1); len(added)+len(changed) != 0 || !slices.Equal(removed, []string{filepath.ToSlash(rel)}) {
		t.Fatalf("removed %v added %v changed %v, want only %s", removed, added, changed, rel)
	}
	if p := e.s.PendingCSRKeys(); !slices.Equal(p, []string{key2}) {
		t.Fatalf("pending %v, want [%s]", p, key2)
	}
	if e.s.CertificateSigningRequestFailed(csr1, store.LeafV2G) {
		t.Fatal("second call reported a removed key")
	}

	// After a restart the pending list is empty, but the key is still the key of an unanswered
	// CSR: it goes too.
	e.open()
	var ok bool
	if err := e.call("certificate_signing_request_failed", map[string]any{"csr": csr2, "certificate_type": "V2G"}, &ok); err != nil || !ok {
		t.Fatalf("after restart: %v, %v; want true", ok, err)
	}
	if fileExists(key2) {
		t.Fatal("key of the failed CSR is still there after a restart")
	}
	for _, args := range []any{map[string]any{"csr": csr2}, map[string]any{"certificate_type": "V2G"}, map[string]any{"csr": csr2, "certificate_type": "X"}} {
		if err := e.call("certificate_signing_request_failed", args, nil); !isArgError(err) {
			t.Errorf("%v: err %v, want an argument error", args, err)
		}
	}

	// A CSR whose certificate already arrived keeps its key.
	csr3, key3 := e.generateCSR(store.LeafV2G, "DE", "EVerest test", "SECC3")
	cert := signCSR(t, csr3, e.pki.CPOSubCA2, e.clock.Now().Add(-time.Minute), e.clock.Now().AddDate(1, 0, 0))
	if got := e.s.UpdateLeafCertificate(pemOf(cert), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("install: %s\n%s", got, e.logs)
	}
	if e.s.CertificateSigningRequestFailed(csr3, store.LeafV2G) || !fileExists(key3) {
		t.Fatal("the key of an answered CSR was removed")
	}
}

// A pending key survives a restart: the certificate that arrives after it installs, and
// garbage collection gives an adopted key a full csr_expiry again before removing it.
func TestPendingCSRKeySurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	csrA, keyA := e.generateCSR(store.LeafV2G, "DE", "EVerest test", "SECCA")
	_, keyB := e.generateCSR(store.LeafCSMS, "DE", "EVerest test", "CPB")

	e.clock.Set(start.Add(50 * time.Minute))
	e.open() // restart: the in-memory pending list is gone
	if p := e.s.PendingCSRKeys(); len(p) != 0 {
		t.Fatalf("pending before any GC after restart: %v", p)
	}
	cert := signCSR(t, csrA, e.pki.CPOSubCA2, start, start.AddDate(3, 0, 0))
	if got := e.s.UpdateLeafCertificate(pemOf(cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("certificate for a key made before the restart: %s\n%s", got, e.logs)
	}
	if in := leafInfo(t, e, store.LeafV2G); in.Key != keyA {
		t.Fatalf("selected %s, want %s", in.Key, keyA)
	}

	rep := e.s.GarbageCollect() // adopts key B at 50 min
	if len(rep.ExpiredCSRKeys) != 0 || !slices.Equal(e.s.PendingCSRKeys(), []string{keyB}) {
		t.Fatalf("GC after restart: %+v, pending %v", rep, e.s.PendingCSRKeys())
	}
	e.clock.Set(start.Add(110 * time.Minute)) // 60 min after adoption: not older than csr_expiry
	if rep := e.s.GarbageCollect(); len(rep.ExpiredCSRKeys) != 0 || !fileExists(keyB) {
		t.Fatalf("key removed at exactly csr_expiry: %+v", rep)
	}
	e.clock.Set(start.Add(110*time.Minute + time.Second))
	if rep := e.s.GarbageCollect(); !slices.Equal(rep.ExpiredCSRKeys, []string{keyB}) || fileExists(keyB) {
		t.Fatalf("GC past csr_expiry: %+v", rep)
	}
	if !fileExists(keyA) {
		t.Fatal("the installed leaf's key was removed")
	}
}
