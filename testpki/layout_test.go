package testpki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeStandard generates the standard PKI and writes its layout into a fresh directory.
func writeStandard(t *testing.T, opts Options, password string) (*PKI, *Layout) {
	t.Helper()
	p, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.WriteLayout(t.TempDir(), password)
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// relFiles lists every regular file and symlink under root, relative and slash-separated.
func relFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// pemCerts parses every certificate of a PEM file, in order.
func pemCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

var layoutFiles = []string{
	"ca/csms/CSMS_ROOT_CA.pem",
	"ca/mf/MF_ROOT_CA.pem",
	"ca/mo/MO_ROOT_CA.pem",
	"ca/v2g/V2G_ROOT_CA.pem",
	"client/csms/CSMS_LEAF.key",
	"client/csms/CSMS_LEAF.pem",
	"client/cso/CPO_CERT_CHAIN.pem",
	"client/cso/SECC_LEAF.key",
	"client/cso/SECC_LEAF.pem",
	"pki/CONTRACT_CHAIN.pem",
	"pki/CONTRACT_LEAF.key",
	"pki/CONTRACT_LEAF.pem",
	"pki/CPO_SUB_CA1.key",
	"pki/CPO_SUB_CA1.pem",
	"pki/CPO_SUB_CA2.key",
	"pki/CPO_SUB_CA2.pem",
	"pki/CSMS_ROOT_CA.key",
	"pki/CSMS_ROOT_CA.pem",
	"pki/CSMS_SERVER.key",
	"pki/CSMS_SERVER.pem",
	"pki/FIRMWARE_SIGNER.key",
	"pki/FIRMWARE_SIGNER.pem",
	"pki/MF_ROOT_CA.key",
	"pki/MF_ROOT_CA.pem",
	"pki/MO_ROOT_CA.key",
	"pki/MO_ROOT_CA.pem",
	"pki/MO_SUB_CA1.key",
	"pki/MO_SUB_CA1.pem",
	"pki/MO_SUB_CA2.key",
	"pki/MO_SUB_CA2.pem",
	"pki/README.txt",
	"pki/V2G_ROOT_CA.key",
	"pki/V2G_ROOT_CA.pem",
}

func TestLayoutFiles(t *testing.T) {
	p, l := writeStandard(t, Options{}, "")
	if got := relFiles(t, l.Root); !slices.Equal(got, layoutFiles) {
		t.Errorf("files written:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(layoutFiles, "\n"))
	}
	var fromFields []string
	for _, path := range l.Files() {
		if !filepath.IsAbs(path) {
			t.Errorf("Layout path %q is not absolute", path)
		}
		rel, err := filepath.Rel(l.Root, path)
		if err != nil {
			t.Fatal(err)
		}
		fromFields = append(fromFields, filepath.ToSlash(rel))
	}
	slices.Sort(fromFields)
	if !slices.Equal(fromFields, layoutFiles) {
		t.Errorf("Layout.Files() = %v", fromFields)
	}
	if l.Extra != filepath.Join(l.Root, "pki") {
		t.Errorf("Extra = %q", l.Extra)
	}

	tests := []struct {
		path string
		want []*Issued
	}{
		{l.V2GBundle, []*Issued{p.V2GRoot}},
		{l.MOBundle, []*Issued{p.MORoot}},
		{l.CSMSBundle, []*Issued{p.CSMSRoot}},
		{l.MFBundle, []*Issued{p.MFRoot}},
		{l.SECCLeafCert, []*Issued{p.SECCLeaf}},
		{l.SECCChain, []*Issued{p.SECCLeaf, p.CPOSubCA2, p.CPOSubCA1}},
		{l.CSMSLeafCert, []*Issued{p.CSMSLeaf}},
		{l.ContractChain, []*Issued{p.Contract, p.MOSubCA2, p.MOSubCA1}},
		{l.ContractCert, []*Issued{p.Contract}},
		{l.CPOSubCA1Cert, []*Issued{p.CPOSubCA1}},
		{l.CSMSServerCert, []*Issued{p.CSMSServer}},
		{l.FirmwareSignerCert, []*Issued{p.FirmwareSigner}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			got := pemCerts(t, tt.path)
			if len(got) != len(tt.want) {
				t.Fatalf("%d certificates, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !got[i].Equal(tt.want[i].Cert) {
					t.Errorf("certificate %d is %q, want %q", i, got[i].Subject, tt.want[i].Cert.Subject)
				}
			}
		})
	}

	readme, err := os.ReadFile(l.README)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range layoutFiles {
		if rel != "pki/README.txt" && !strings.Contains(string(readme), rel) {
			t.Errorf("README.txt does not mention %s", rel)
		}
	}
}

func TestLayoutVerifiesWithOpenSSL(t *testing.T) {
	_, l := writeStandard(t, Options{}, "")
	tests := []struct {
		name      string
		root      string
		untrusted string
		cert      string
		purpose   string
	}{
		{"SECC leaf", l.V2GBundle, l.SECCChain, l.SECCLeafCert, "sslserver"},
		{"CPO Sub-CA 2", l.V2GBundle, l.CPOSubCA1Cert, l.CPOSubCA2Cert, ""},
		{"contract", l.MOBundle, l.ContractChain, l.ContractCert, ""},
		{"MO Sub-CA 2", l.MOBundle, l.MOSubCA1Cert, l.MOSubCA2Cert, ""},
		{"CSMS leaf", l.CSMSBundle, "", l.CSMSLeafCert, "sslclient"},
		{"CSMS server", l.CSMSBundle, "", l.CSMSServerCert, "sslserver"},
		{"firmware signer", l.MFBundle, "", l.FirmwareSignerCert, ""},
		{"pki/ copy of the V2G root", l.V2GRootCert, l.SECCChain, l.SECCLeafCert, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"verify", "-CAfile", tt.root}
			if tt.untrusted != "" {
				args = append(args, "-untrusted", tt.untrusted)
			}
			if tt.purpose != "" {
				args = append(args, "-purpose", tt.purpose)
			}
			out := mustOpenSSL(t, append(args, tt.cert)...)
			if !strings.HasSuffix(strings.TrimSpace(out), ": OK") {
				t.Errorf("openssl verify: %s", out)
			}
		})
	}

	// The wrong domain's root must not verify: the domains are separate PKIs.
	if out, err := openssl(t, "verify", "-CAfile", l.MOBundle, "-untrusted", l.SECCChain, l.SECCLeafCert); err == nil {
		t.Errorf("SECC leaf verified against the MO root:\n%s", out)
	}
	// The CSMS leaf is a client certificate only.
	if out, err := openssl(t, "verify", "-CAfile", l.CSMSBundle, "-purpose", "sslserver", l.CSMSLeafCert); err == nil {
		t.Errorf("CSMS leaf verified as a TLS server:\n%s", out)
	}
}

func TestLayoutSECCLeafSubject(t *testing.T) {
	_, l := writeStandard(t, Options{}, "")
	out := mustOpenSSL(t, "x509", "-noout", "-subject", "-nameopt", "multiline,show_type", "-in", l.SECCLeafCert)
	// multiline prints one attribute a line, in DER order, "name = TYPE:value".
	var got []string
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) == 3 {
			got = append(got, f[0]+"="+f[2])
		} else if len(f) > 3 {
			got = append(got, f[0]+"="+strings.Join(f[2:], " "))
		}
	}
	want := []string{
		"countryName=PRINTABLESTRING:DE",
		"organizationName=UTF8STRING:EVerest test",
		"commonName=UTF8STRING:SECCCert",
		"domainComponent=IA5STRING:CPO",
	}
	if !slices.Equal(got, want) {
		t.Errorf("openssl subject:\n%s\nparsed %q, want %q", out, got, want)
	}
	if out := mustOpenSSL(t, "x509", "-noout", "-ocsp_uri", "-in", l.SECCLeafCert); strings.TrimSpace(out) != DefaultOCSPURL {
		t.Errorf("openssl -ocsp_uri = %q, want %q", out, DefaultOCSPURL)
	}
}

func TestLayoutKeysAndModes(t *testing.T) {
	tests := []struct {
		name         string
		optsPassword string
		argPassword  string
		want         string
	}{
		{"unencrypted", "", "", ""},
		{"password argument", "", "123456", "123456"},
		{"Options.Password", "from-options", "", "from-options"},
		{"argument wins", "from-options", "123456", "123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, l := writeStandard(t, Options{Password: tt.optsPassword}, tt.argPassword)
			if l.KeyPassword != tt.want {
				t.Errorf("KeyPassword %q, want %q", l.KeyPassword, tt.want)
			}
			keys := map[string]*Issued{
				l.SECCLeafKey: p.SECCLeaf, l.CSMSLeafKey: p.CSMSLeaf,
				l.V2GRootKey: p.V2GRoot, l.CPOSubCA1Key: p.CPOSubCA1, l.CPOSubCA2Key: p.CPOSubCA2,
				l.MORootKey: p.MORoot, l.MOSubCA1Key: p.MOSubCA1, l.MOSubCA2Key: p.MOSubCA2,
				l.ContractKey: p.Contract, l.CSMSRootKey: p.CSMSRoot, l.CSMSServerKey: p.CSMSServer,
				l.MFRootKey: p.MFRoot, l.FirmwareSignerKey: p.FirmwareSigner,
			}
			for _, path := range l.Files() {
				info, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				want := CertMode
				if strings.HasSuffix(path, ".key") {
					want = KeyMode
					if _, ok := keys[path]; !ok {
						t.Errorf("%s is not checked", path)
					}
				}
				if info.Mode().Perm() != want {
					t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
				}
			}
			err := filepath.WalkDir(l.Root, func(path string, d fs.DirEntry, err error) error {
				if err != nil || !d.IsDir() || path == l.Root {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				want := DirMode
				if keys, _ := filepath.Glob(filepath.Join(path, "*.key")); len(keys) > 0 {
					want = KeyDirMode
				}
				if info.Mode().Perm() != want {
					t.Errorf("directory %s: mode %v, want %v", path, info.Mode().Perm(), want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			for path, owner := range keys {
				args := []string{"pkey", "-pubout", "-in", path}
				if tt.want != "" {
					args = append(args, "-passin", "pass:"+tt.want)
				}
				keyPub := mustOpenSSL(t, args...)
				certPub := mustOpenSSL(t, "x509", "-noout", "-pubkey", "-in", writeTemp(t, "c.pem", owner.CertPEM()))
				if keyPub != certPub {
					t.Errorf("%s: openssl reads a key that does not match %q", path, owner.Cert.Subject)
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if encrypted := bytes.Contains(data, []byte("Proc-Type: 4,ENCRYPTED")); encrypted != (tt.want != "") {
					t.Errorf("%s: encrypted %v, want %v", path, encrypted, tt.want != "")
				}
			}
			if tt.want != "" {
				if out, err := openssl(t, "pkey", "-noout", "-in", l.SECCLeafKey, "-passin", "pass:wrong"); err == nil {
					t.Errorf("openssl read the SECC key with a wrong password:\n%s", out)
				}
			}
			readme, err := os.ReadFile(l.README)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && bytes.Contains(readme, []byte(tt.want)) {
				t.Error("README.txt (world-readable) contains the key password")
			}
		})
	}
}

func TestWriteLayoutRefusesToOverwrite(t *testing.T) {
	p, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	foreign := filepath.Join(dir, "client", "cso", "SECC_LEAF.key")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("the station's real key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteLayout(dir, ""); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteLayout over an existing key: err %v, want fs.ErrExist", err)
	}
	if data, _ := os.ReadFile(foreign); string(data) != "the station's real key" {
		t.Error("the existing key was overwritten")
	}
	if got := relFiles(t, dir); !slices.Equal(got, []string{"client/cso/SECC_LEAF.key"}) {
		t.Errorf("WriteLayout wrote files although it refused: %v", got)
	}
	// A second layout into the same directory is refused the same way.
	l, err := p.WriteLayout(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteLayout(l.Root, ""); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteLayout: err %v, want fs.ErrExist", err)
	}
}

// TestWriteLayoutRollsBack makes WriteLayout fail after it has written part of the tree: pki/ is a
// dangling symlink, which the existence check sees as "no files there" but which cannot be
// created as a directory. Everything written before the failure must be gone again, and the
// symlink (not WriteLayout's) must stay.
func TestWriteLayoutRollsBack(t *testing.T) {
	p, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "pki")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Skipf("cannot make a symlink here: %v", err)
	}
	if _, err := p.WriteLayout(dir, ""); err == nil {
		t.Fatal("WriteLayout succeeded through a dangling pki symlink")
	}
	if got := relFiles(t, dir); !slices.Equal(got, []string{"pki"}) {
		t.Errorf("left behind after a failed WriteLayout: %v", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directories left behind: %v", entries)
	}
}
