package store

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/evsesec/evsesec/certs"
)

// cacheDirName is the directory under the certs root where evsesec keeps files it derives from
// the store for consumers (combined bundles, hashed copies of read-only directories). Nothing in
// it is source data; it can be deleted at any time.
const cacheDirName = ".evsesec"

// GetVerifyFile returns the path of a PEM file holding domain t's trust material, for an
// OpenSSL-based TLS stack's CAfile. A bundle file is returned as it is. For a bundle directory,
// evsesec writes the directory's certificates into one file under the certs root's .evsesec/
// (rewritten only when its content changes) and returns that; if that cannot be written, the file
// of the directory that holds its first valid root. "" when the domain has no bundle on disk.
func (s *Store) GetVerifyFile(t CAType) string {
	if !t.Valid() {
		return ""
	}
	unlock, err := s.lock.lock()
	if err != nil {
		return ""
	}
	defer unlock()
	b := s.readBundle(t)
	if !b.isDir {
		if fi, err := s.fs.Stat(b.path); err == nil && fi.Mode().IsRegular() {
			return b.path
		}
		return ""
	}
	cs := b.certificates()
	if len(cs) == 0 {
		return ""
	}
	combined := filepath.Join(s.cfg.CertsRoot, cacheDirName, string(t)+"_CA_BUNDLE.pem")
	data := certs.EncodePEM(cs...)
	if old, err := s.fs.ReadFile(combined); err == nil && bytes.Equal(old, data) {
		return combined
	}
	if err := writeAtomic(s.fs, combined, data, 0o644, 0o755); err == nil {
		return combined
	} else {
		s.log.Warn("get_verify_file: cannot write the combined bundle; returning one file of the directory", "domain", t, "err", err)
	}
	now := s.now()
	for _, f := range b.files {
		for _, c := range f.certs {
			if certs.IsSelfSigned(c) && !now.Before(c.NotBefore) && !now.After(c.NotAfter) {
				return f.path
			}
		}
	}
	return ""
}

// GetVerifyLocation returns a directory or file an OpenSSL TLS stack can use as its CApath/CAfile
// for domain t. A bundle file is returned as it is. A bundle directory gets OpenSSL's hash links
// (HASH.N → file, as c_rehash makes them) and is returned; when the directory is read-only, a
// hashed copy is made under the certs root's .evsesec/ (or the temporary directory) and that is
// returned instead. "" when the domain has no bundle on disk or no certificate in it.
func (s *Store) GetVerifyLocation(t CAType) string {
	if !t.Valid() {
		return ""
	}
	unlock, err := s.lock.lock()
	if err != nil {
		return ""
	}
	defer unlock()
	b := s.readBundle(t)
	if !b.isDir {
		if fi, err := s.fs.Stat(b.path); err == nil && fi.Mode().IsRegular() {
			return b.path
		}
		return ""
	}
	if len(b.certificates()) == 0 {
		return ""
	}
	if err := s.rehash(b); err == nil {
		return b.path
	} else {
		s.log.Info("get_verify_location: cannot rehash the bundle directory in place; making a hashed copy", "domain", t, "err", err)
	}
	for _, base := range []string{filepath.Join(s.cfg.CertsRoot, cacheDirName), filepath.Join(os.TempDir(), "evsesec-"+fmt.Sprint(os.Getuid()))} {
		dir := filepath.Join(base, string(t)+"_CA_HASHED")
		if err := s.writeHashedCopy(b, dir); err == nil {
			return dir
		} else {
			s.log.Warn("get_verify_location: cannot write hashed copy", "dir", dir, "err", err)
		}
	}
	return ""
}

// hashLinks computes the link names OpenSSL's by_dir lookup expects: for every certificate,
// SUBJECTHASH.N with N counting up per hash, duplicates (same DER) linked once. The result maps
// link name → certificate and file.
type hashEntry struct {
	cert *x509.Certificate
	file string
}

func hashEntries(b *caBundle) map[string]hashEntry {
	out := map[string]hashEntry{}
	next := map[string]int{}
	seen := map[certs.Fingerprint]bool{}
	for _, f := range b.files {
		for _, c := range f.certs {
			fp := certs.FingerprintOf(c)
			if seen[fp] {
				continue
			}
			seen[fp] = true
			h := certs.FormatNameHash(certs.SubjectHash(c))
			name := fmt.Sprintf("%s.%d", h, next[h])
			next[h]++
			out[name] = hashEntry{cert: c, file: f.path}
		}
	}
	return out
}

// rehash makes the hash links of a bundle directory: relative symlinks HASH.N → file name. Stale
// hash links are removed; other files are never touched. A file with several certificates is
// linked under each of its subjects' hashes (OpenSSL's by_dir loads every certificate of a file).
func (s *Store) rehash(b *caBundle) error {
	if err := s.checkWritable(b.path); err != nil {
		return err
	}
	want := hashEntries(b)
	entries, err := s.fs.ReadDir(b.path)
	if err != nil {
		return err
	}
	changed := false
	for _, e := range entries {
		if !hashLinkName.MatchString(e.Name()) || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(b.path, e.Name())
		target, _ := s.fs.Readlink(p)
		if w, ok := want[e.Name()]; ok && target == filepath.Base(w.file) {
			delete(want, e.Name())
			continue
		}
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		changed = true
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(b.path, n)
		if _, err := s.fs.Lstat(p); err == nil {
			// A regular file (not ours) carries this name; leave it and let OpenSSL read it.
			continue
		}
		if err := s.fs.Symlink(filepath.Base(want[n].file), p); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return s.fs.SyncDir(b.path)
	}
	return nil
}

// writeHashedCopy writes one PEM file per certificate, named HASH.N, into dir (replacing what
// evsesec wrote there before), for directories it may not change.
func (s *Store) writeHashedCopy(b *caBundle, dir string) error {
	want := hashEntries(b)
	if entries, err := s.fs.ReadDir(dir); err == nil {
		for _, e := range entries {
			if _, ok := want[e.Name()]; !ok && hashLinkName.MatchString(e.Name()) {
				s.fs.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	for name, e := range want {
		p := filepath.Join(dir, name)
		data := certs.EncodePEM(e.cert)
		if old, err := s.fs.ReadFile(p); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := writeAtomic(s.fs, p, data, 0o644, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// checkWritable tells whether this process may create entries in dir.
func (s *Store) checkWritable(dir string) error {
	f, err := s.fs.CreateTemp(dir, tempPrefix+"probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return s.fs.Remove(name)
}
