package store

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// Finding is one thing `evsesec doctor` found about a store, with how to fix it.
type Finding struct {
	// Severity is "error" (something does not work), "warning" (will not work soon or works by
	// luck) or "info".
	Severity string `json:"severity"`
	Path     string `json:"path,omitempty"`
	Problem  string `json:"problem"`
	Fix      string `json:"fix"`
}

// Diagnose explains the store: missing bundles, files that do not parse, misfiled certificates,
// leaves without keys, keys without leaves, keys that cannot be decrypted or that others can
// read, expiring material, leftovers of interrupted writes. It changes nothing.
// With secc_ids configured it also says which EVSE has no SECC leaf of its own and which share
// one.
func (s *Store) Diagnose() []Finding { return s.diagnose(s.cfg.SECCIDs) }

func (s *Store) diagnose(seccIDs []string) []Finding {
	unlock := s.lock.rlock()
	defer unlock()
	d := &diagnosis{s: s, v: s.readCAs()}
	for _, t := range CATypes {
		d.domain(t)
	}
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	for _, ls := range sets {
		d.leaves(ls)
	}
	d.keys(sets)
	d.evses(seccIDs)
	return d.out
}

type diagnosis struct {
	s   *Store
	v   *caView
	out []Finding
}

func (d *diagnosis) add(sev, path, problem, fix string) {
	d.out = append(d.out, Finding{Severity: sev, Path: path, Problem: problem, Fix: fix})
}

// files checks every file of a directory (or one file) that the store reads: parse errors and
// leftover temporary files.
func (d *diagnosis) files(dir string) {
	d.tempFiles(dir)
	des, err := d.s.fs.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		if strings.HasPrefix(de.Name(), tempPrefix) {
			continue
		}
		if !isCertFileName(de.Name()) {
			continue
		}
		if f, err := d.s.files.load(p); err == nil && f.err != nil {
			d.add("error", p, "file does not parse and is ignored: "+f.err.Error(), "repair the file or remove it")
		}
	}
}

// tempFiles reports the temporary files of interrupted writes in dir and its ocsp/ and der/.
func (d *diagnosis) tempFiles(dir string) {
	for _, sub := range []string{dir, filepath.Join(dir, ocspDirName), filepath.Join(dir, derDirName)} {
		des, err := d.s.fs.ReadDir(sub)
		if err != nil {
			continue
		}
		for _, de := range des {
			if strings.HasPrefix(de.Name(), tempPrefix) {
				d.add("info", filepath.Join(sub, de.Name()), "leftover temporary file of an interrupted write (the real file is intact)", "harmless; `evsesec gc` removes it")
			}
		}
	}
}

func (d *diagnosis) domain(t CAType) {
	b := d.v.bundles[t]
	if !d.s.exists(b.path) {
		d.add("warning", b.path, fmt.Sprintf("the %s domain has no bundle: nothing verifies against it", t),
			fmt.Sprintf("install its root: evsesec install-ca --type %s ROOT.pem", t))
		return
	}
	if b.isDir {
		d.files(b.path)
	} else {
		d.tempFiles(filepath.Dir(b.path))
		if f, err := d.s.files.load(b.path); err == nil && f.err != nil {
			d.add("error", b.path, "bundle file does not parse: "+f.err.Error(), "repair the file (one PEM certificate after the other)")
		}
	}

	now := d.s.now()
	pool := d.v.domainPool(t)
	anchors := 0
	for _, f := range b.files {
		for _, c := range f.certs {
			selfSigned := pool.IsSelfSigned(c)
			if !isCACertificate(c, selfSigned) {
				d.add("warning", f.path, fmt.Sprintf("%s is not a CA certificate but sits in the %s bundle", describe(c), t),
					"remove it from the bundle; leaves are installed with update_leaf_certificate")
				continue
			}
			if !selfSigned && len(d.v.all.Issuers(c)) == 0 {
				d.add("warning", f.path, fmt.Sprintf("%s has no issuer in any domain: it cannot be named by OCPP hash data", describe(c)),
					"install its issuer (root) too")
			}
			switch validityAt(c, now) {
			case expired:
				d.add("warning", f.path, fmt.Sprintf("%s expired on %s", describe(c), c.NotAfter.UTC().Format("2006-01-02")), "install its successor and delete it")
				continue
			case notYetValid:
				continue
			}
			if selfSigned || len(pool.Issuers(c)) == 0 {
				anchors++
				if warning, _ := d.s.cfg.ExpiryThresholds(); c.NotAfter.Sub(now) <= warning {
					d.add("warning", f.path, fmt.Sprintf("trust anchor %s expires on %s", describe(c), c.NotAfter.UTC().Format("2006-01-02")), "install its successor")
				}
			}
		}
	}
	if anchors == 0 {
		d.add("error", b.path, fmt.Sprintf("the %s domain has no trust anchor that is valid now", t),
			fmt.Sprintf("install a valid root: evsesec install-ca --type %s ROOT.pem", t))
	}
}

func (d *diagnosis) leaves(ls *leafSet) {
	if !d.s.exists(ls.certDir) {
		d.add("info", ls.certDir, fmt.Sprintf("no %s leaf directory yet", ls.lt), "it is created by the first CSR or leaf install")
		return
	}
	d.files(ls.certDir)
	now := d.s.now()
	for _, e := range ls.entries {
		if e.cert.IsCA {
			d.add("warning", e.firstFile().path, describe(e.cert)+" is a CA certificate in a leaf directory", "move it into a CA bundle with evsesec install-ca")
			continue
		}
		if validityAt(e.cert, now) == expired {
			d.add("info", e.firstFile().path, describe(e.cert)+" has expired", "it is pruned by garbage collection when the store is full; or delete it by hash")
			continue
		}
		if _, err := d.s.verifyLeaf(d.v, ls, e, now, true); err != nil {
			fix := "install the issuing CA chain of the leaf into the " + string(ls.lt.Domain()) + " domain"
			for _, other := range CATypes {
				if other == ls.lt.Domain() {
					continue
				}
				if _, err2 := certs.Verify(e.cert, certs.VerifyOptions{Trusted: d.v.domainPool(other), Intermediates: e.intermediates(), Time: now, AllowFutureLeaf: true}); err2 == nil {
					fix = fmt.Sprintf("the leaf chains to the %s domain: it looks misfiled", other)
				}
			}
			d.add("warning", e.firstFile().path, fmt.Sprintf("%s does not verify against the %s domain: %v", describe(e.cert), ls.lt.Domain(), err), fix)
		}
		if kl := d.s.findKey(e.cert, e.firstFile().path, ls.keyDir); kl.key == nil {
			d.add("warning", e.firstFile().path, fmt.Sprintf("no private key for %s in %s", describe(e.cert), ls.keyDir), "put the key next to it, or install a leaf for a key made by generate_certificate_signing_request")
		}
	}
	for _, lt := range d.s.seccTypesPresent(ls) {
		d.inUse(d.s.kindLeaves(lt), now)
	}
}

// expiring says when c expires if that is within the warning threshold ("" otherwise), and
// whether it is within the critical one.
func (d *diagnosis) expiring(c *x509.Certificate, now time.Time) string {
	warning, critical := d.s.cfg.ExpiryThresholds()
	left := c.NotAfter.Sub(now)
	if left > warning {
		return ""
	}
	when := fmt.Sprintf("on %s (%d days left, within the %d-day warning threshold)", c.NotAfter.UTC().Format("2006-01-02"), int(math.Floor(left.Hours()/24)), int(warning.Hours()/24))
	if left <= critical {
		when = fmt.Sprintf("on %s (%d days left, within the %d-day critical threshold)", c.NotAfter.UTC().Format("2006-01-02"), int(math.Floor(left.Hours()/24)), int(critical.Hours()/24))
	}
	return when
}

func (d *diagnosis) keys(sets []*leafSet) {
	used := map[string]bool{}
	for _, ls := range sets {
		for _, f := range ls.files {
			for _, c := range f.certs {
				used[keys.Fingerprint(c.PublicKey)] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, ls := range sets {
		if seen[ls.keyDir] {
			continue
		}
		seen[ls.keyDir] = true
		if ls.keyDir != ls.certDir {
			d.files(ls.keyDir)
		}
		for _, k := range d.s.listKeys(ls.keyDir) {
			if fi, err := d.s.fs.Stat(k.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
				d.add("warning", k.path, fmt.Sprintf("private key is readable by others (mode %v)", fi.Mode().Perm()), "chmod 600 "+k.path)
			}
			switch {
			case errors.Is(k.err, keys.ErrWrongPassword):
				d.add("error", k.path, "private key does not decrypt with the configured password", "set private_key_password to this key's password, or re-encrypt the key")
			case errors.Is(k.err, keys.ErrPasswordRequired):
				d.add("error", k.path, "private key is encrypted but no password is configured", "set private_key_password")
			case k.err != nil:
				d.add("warning", k.path, "private key cannot be read: "+k.err.Error(), "check the file; keys of hardware backends need their backend configured")
			case k.kind != keys.KindFile && used[k.fp]:
				d.add("info", k.path, fmt.Sprintf("private key held in the %s (the file names it)", keyKindName(k.kind)), "nothing to do; the key never leaves the hardware")
			case !used[k.fp]:
				if _, pending := d.s.pending.get(k.path); pending {
					d.add("info", k.path, "key of a CSR waiting for its certificate", "install the signed leaf with update_leaf_certificate")
				} else {
					d.add("info", k.path, "key without a certificate (an unanswered CSR?)", "garbage collection removes it after csr_expiry unless its certificate arrives")
				}
			}
		}
	}
}

// keyKindName says where a key of kind lives, for people.
func keyKindName(k keys.Kind) string {
	switch k {
	case keys.KindTPM:
		return "TPM"
	case keys.KindPKCS11:
		return "PKCS#11 token"
	}
	return "file"
}
