package testpki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File modes of the tree WriteLayout writes.
const (
	DirMode fs.FileMode = 0o755
	// KeyDirMode is the mode of a directory that holds private keys: not readable by others.
	KeyDirMode fs.FileMode = 0o700
	CertMode   fs.FileMode = 0o644
	KeyMode    fs.FileMode = 0o600 // private keys are readable by the owner only
)

// Layout holds the absolute path of every file WriteLayout wrote.
type Layout struct {
	// Root is the directory the tree was written under.
	Root string
	// KeyPassword is the password the key files are encrypted with; empty when they are plain
	// PKCS#8.
	KeyPassword string

	// The EVerest default tree: one root per domain bundle, the SECC leaf with its chain and key,
	// the CSMS leaf with its key.
	V2GBundle, MOBundle, CSMSBundle, MFBundle string
	SECCLeafCert, SECCChain, SECCLeafKey      string
	CSMSLeafCert, CSMSLeafKey                 string

	// Extra is the pki/ directory. It holds every other certificate and key of the PKI, for tests
	// that install, verify or sign with them, and README.txt.
	Extra string

	V2GRootCert, V2GRootKey                                      string
	CPOSubCA1Cert, CPOSubCA1Key, CPOSubCA2Cert, CPOSubCA2Key     string
	MORootCert, MORootKey                                        string
	MOSubCA1Cert, MOSubCA1Key, MOSubCA2Cert, MOSubCA2Key         string
	ContractCert, ContractKey, ContractChain                     string
	CSMSRootCert, CSMSRootKey, CSMSServerCert, CSMSServerKey     string
	MFRootCert, MFRootKey, FirmwareSignerCert, FirmwareSignerKey string
	README                                                       string

	// ISO 15118-20 (empty without Options.ISO15118_20): the -20 SECC leaf, its key and chain in
	// client/cso beside the -2 ones (the V2G bundle then holds both roots), and the -20 CAs in
	// pki/.
	SECC20LeafCert, SECC20LeafKey, SECC20Chain string
	V2G20RootCert, V2G20RootKey                string
	CPO20SubCA1Cert, CPO20SubCA1Key            string
	CPO20SubCA2Cert, CPO20SubCA2Key            string
	// EVSEs are the per-EVSE SECC leaves of Options.SeccIDs.
	EVSEs []EVSEFiles
}

// layoutFile is one file of the tree: where it goes, what it holds and what it is.
type layoutFile struct {
	rel  string // slash-separated, under the root
	data []byte
	mode fs.FileMode
	dst  *string // the Layout field that receives the absolute path
	what string  // one line for README.txt
}

// WriteLayout writes the PKI as the EVerest default certificate tree under dir, plus a pki/
// directory with everything else a test may need and a README.txt describing each file:
//
//	ca/v2g/V2G_ROOT_CA.pem      ca/mo/MO_ROOT_CA.pem      ca/csms/CSMS_ROOT_CA.pem      ca/mf/MF_ROOT_CA.pem
//	client/cso/SECC_LEAF.pem    client/cso/SECC_LEAF.key  client/cso/CPO_CERT_CHAIN.pem
//	client/csms/CSMS_LEAF.pem   client/csms/CSMS_LEAF.key
//	pki/NAME.pem + pki/NAME.key for V2G_ROOT_CA, CPO_SUB_CA1, CPO_SUB_CA2, MO_ROOT_CA, MO_SUB_CA1,
//	MO_SUB_CA2, CONTRACT_LEAF, CSMS_ROOT_CA, CSMS_SERVER, MF_ROOT_CA, FIRMWARE_SIGNER;
//	pki/CONTRACT_CHAIN.pem, pki/README.txt
//
// Key files are encrypted with password, or with p.Password when password is empty, or else
// written as plain PKCS#8 (see Issued.KeyPEM). Directories are created 0755, certificates written
// 0644 and keys 0600.
//
// WriteLayout never overwrites: if any of its files already exists it writes nothing and returns
// an error that matches fs.ErrExist, so a station's real keys cannot be clobbered by a mistyped
// `evsesec pki init`. If writing fails part way, the files and directories it created are
// removed again and the error is returned.
func (p *PKI) WriteLayout(dir string, password string) (*Layout, error) {
	if password == "" {
		password = p.Password
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testpki: %w", err)
	}
	l := &Layout{Root: root, KeyPassword: password}

	// Keys are exported before anything touches the disk, so a key that cannot be exported does
	// not leave a partial tree behind.
	var files []layoutFile
	var firstErr error
	cert := func(rel string, dst *string, what string, certs ...*Issued) {
		files = append(files, layoutFile{rel: rel, data: CertsPEM(certs...), mode: CertMode, dst: dst, what: what})
	}
	key := func(rel string, dst *string, what string, i *Issued) {
		data, err := i.KeyPEM(password)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("testpki: key of %s: %w", rel, err)
		}
		files = append(files, layoutFile{rel: rel, data: data, mode: KeyMode, dst: dst, what: what})
	}

	v2gWhat := "V2G trust anchor bundle: the V2G root"
	if p.V2G20Root != nil {
		v2gWhat = "V2G trust anchor bundle: the V2G root and the ISO 15118-20 V2G root"
	}
	cert("ca/v2g/V2G_ROOT_CA.pem", &l.V2GBundle, v2gWhat, p.v2gRoots()...)
	cert("ca/mo/MO_ROOT_CA.pem", &l.MOBundle, "MO trust anchor bundle: the MO root", p.MORoot)
	cert("ca/csms/CSMS_ROOT_CA.pem", &l.CSMSBundle, "CSMS trust anchor bundle: the CSMS root", p.CSMSRoot)
	cert("ca/mf/MF_ROOT_CA.pem", &l.MFBundle, "MF trust anchor bundle: the MF root", p.MFRoot)
	cert("client/cso/SECC_LEAF.pem", &l.SECCLeafCert, "SECC leaf (ISO 15118 TLS server certificate)", p.SECCLeaf)
	key("client/cso/SECC_LEAF.key", &l.SECCLeafKey, "key of the SECC leaf", p.SECCLeaf)
	cert("client/cso/CPO_CERT_CHAIN.pem", &l.SECCChain, "SECC leaf, CPO Sub-CA 2, CPO Sub-CA 1 (no root)", p.SECCLeaf, p.CPOSubCA2, p.CPOSubCA1)
	cert("client/csms/CSMS_LEAF.pem", &l.CSMSLeafCert, "CSMS leaf (OCPP security profile 3 client certificate)", p.CSMSLeaf)
	key("client/csms/CSMS_LEAF.key", &l.CSMSLeafKey, "key of the CSMS leaf", p.CSMSLeaf)

	l.Extra = filepath.Join(root, "pki")
	// pair writes an extra certificate and its key as pki/<name>.pem and pki/<name>.key.
	pair := func(name string, certDst, keyDst *string, what string, i *Issued) {
		cert("pki/"+name+".pem", certDst, what, i)
		key("pki/"+name+".key", keyDst, "key of "+name+".pem", i)
	}
	pair("V2G_ROOT_CA", &l.V2GRootCert, &l.V2GRootKey, "V2G root CA", p.V2GRoot)
	pair("CPO_SUB_CA1", &l.CPOSubCA1Cert, &l.CPOSubCA1Key, "CPO Sub-CA 1 (pathlen 1), issued by the V2G root", p.CPOSubCA1)
	pair("CPO_SUB_CA2", &l.CPOSubCA2Cert, &l.CPOSubCA2Key, "CPO Sub-CA 2 (pathlen 0), issued by CPO Sub-CA 1", p.CPOSubCA2)
	pair("MO_ROOT_CA", &l.MORootCert, &l.MORootKey, "MO root CA", p.MORoot)
	pair("MO_SUB_CA1", &l.MOSubCA1Cert, &l.MOSubCA1Key, "MO Sub-CA 1 (pathlen 1), issued by the MO root", p.MOSubCA1)
	pair("MO_SUB_CA2", &l.MOSubCA2Cert, &l.MOSubCA2Key, "MO Sub-CA 2 (pathlen 0), issued by MO Sub-CA 1", p.MOSubCA2)
	pair("CONTRACT_LEAF", &l.ContractCert, &l.ContractKey, "contract certificate (CN is the eMAID), issued by MO Sub-CA 2", p.Contract)
	cert("pki/CONTRACT_CHAIN.pem", &l.ContractChain, "contract certificate, MO Sub-CA 2, MO Sub-CA 1 (no root)", p.Contract, p.MOSubCA2, p.MOSubCA1)
	pair("CSMS_ROOT_CA", &l.CSMSRootCert, &l.CSMSRootKey, "CSMS root CA", p.CSMSRoot)
	pair("CSMS_SERVER", &l.CSMSServerCert, &l.CSMSServerKey, "CSMS server certificate (localhost, 127.0.0.1), issued by the CSMS root", p.CSMSServer)
	pair("MF_ROOT_CA", &l.MFRootCert, &l.MFRootKey, "MF (manufacturer) root CA", p.MFRoot)
	pair("FIRMWARE_SIGNER", &l.FirmwareSignerCert, &l.FirmwareSignerKey, "firmware signing certificate, issued by the MF root", p.FirmwareSigner)
	p.layout20(l, cert, key, pair)
	if firstErr != nil {
		return nil, firstErr
	}
	files = append(files, layoutFile{rel: "pki/README.txt", data: readme(files, password != ""), mode: CertMode, dst: &l.README})

	for i := range files {
		*files[i].dst = filepath.Join(root, filepath.FromSlash(files[i].rel))
		if _, err := os.Lstat(*files[i].dst); err == nil {
			return nil, fmt.Errorf("testpki: %s: %w; refusing to overwrite", *files[i].dst, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("testpki: %w", err)
		}
	}

	var w treeWriter
	for _, f := range files {
		if err := w.writeFile(*f.dst, f.data, f.mode); err != nil {
			return nil, errors.Join(err, w.rollback())
		}
	}
	return l, nil
}

// Files lists the absolute path of every file in the layout.
func (l *Layout) Files() []string {
	return append([]string{
		l.V2GBundle, l.MOBundle, l.CSMSBundle, l.MFBundle,
		l.SECCLeafCert, l.SECCLeafKey, l.SECCChain, l.CSMSLeafCert, l.CSMSLeafKey,
		l.V2GRootCert, l.V2GRootKey, l.CPOSubCA1Cert, l.CPOSubCA1Key, l.CPOSubCA2Cert, l.CPOSubCA2Key,
		l.MORootCert, l.MORootKey, l.MOSubCA1Cert, l.MOSubCA1Key, l.MOSubCA2Cert, l.MOSubCA2Key,
		l.ContractCert, l.ContractKey, l.ContractChain,
		l.CSMSRootCert, l.CSMSRootKey, l.CSMSServerCert, l.CSMSServerKey,
		l.MFRootCert, l.MFRootKey, l.FirmwareSignerCert, l.FirmwareSignerKey,
		l.README,
	}, l.files20()...)
}

// readme describes the tree, one line a file. The password itself is never written: the README is
// world-readable.
func readme(files []layoutFile, encrypted bool) []byte {
	var b strings.Builder
	b.WriteString("Test PKI generated by evsesec (package testpki). For tests and demos only.\n\n")
	b.WriteString("Paths are relative to the certificate root (the parent of this pki/ directory).\n")
	if encrypted {
		b.WriteString("Key files (*.key) are legacy PEM \"EC PRIVATE KEY\"/\"RSA PRIVATE KEY\" encrypted with\n" +
			"AES-128-CBC under the password given when the PKI was written.\n\n")
	} else {
		b.WriteString("Key files (*.key) are unencrypted PKCS#8 \"PRIVATE KEY\".\n\n")
	}
	width := 0
	for _, f := range files {
		width = max(width, len(f.rel))
	}
	for _, f := range files {
		fmt.Fprintf(&b, "%-*s  %s\n", width, f.rel, f.what)
	}
	return []byte(b.String())
}

// treeWriter creates files and directories and remembers what it created, so that a failed
// WriteLayout can remove exactly that and nothing it did not make.
type treeWriter struct {
	files []string
	dirs  []string
}

// mkdirAll is os.MkdirAll that records each directory it creates.
func (w *treeWriter) mkdirAll(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("testpki: %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("testpki: %w", err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := w.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	w.dirs = append(w.dirs, dir)
	// Chmod because the umask may have narrowed the mode Mkdir asked for.
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	return nil
}

// writeFile creates path exclusively with exactly mode and writes data to it.
func (w *treeWriter) writeFile(path string, data []byte, mode fs.FileMode) error {
	if err := w.mkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	if mode == KeyMode {
		if err := os.Chmod(filepath.Dir(path), KeyDirMode); err != nil {
			return fmt.Errorf("testpki: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	w.files = append(w.files, path)
	// Chmod because the umask may have narrowed the mode OpenFile asked for.
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("testpki: writing %s: %w", path, err)
	}
	return nil
}

// rollback removes what the writer created, newest first.
func (w *treeWriter) rollback() error {
	var errs []error
	for i := len(w.files) - 1; i >= 0; i-- {
		if err := os.Remove(w.files[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for i := len(w.dirs) - 1; i >= 0; i-- {
		if err := os.Remove(w.dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	w.files, w.dirs = nil, nil
	return errors.Join(errs...)
}
