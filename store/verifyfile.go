package store

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/evsesec/evsesec/certs"
)

// cacheDirName is the directory under the certs root where evsesec keeps files it derives from
// the store for consumers (combined bundles, hashed copies of read-only directories). Nothing in
// it is source data; it can be deleted at any time.
const cacheDirName = ".evsesec"

// cacheDirs are the directories that hold derived files now, in order of preference: the certs
// root's .evsesec/, then this process's private directory if it made one.
func (s *Store) cacheDirs() []string {
	out := []string{filepath.Join(s.cfg.CertsRoot, cacheDirName)}
	if dir := s.private.get(); dir != "" {
		out = append(out, dir)
	}
	return out
}

// writeDirs are the directories a derived file may be written into: the certs root's .evsesec/
// when this process holds the store's lock (inStore), then a directory private to this process.
// The private one is made on first use (os.MkdirTemp under the temporary directory: a new
// directory with a random name, mode 0700, so no other user can have prepared it or look into
// it) and removed with everything in it by Close, so nothing outlives the process under a name
// someone could predict.
func (s *Store) writeDirs(inStore bool) []string {
	var out []string
	if inStore {
		out = append(out, filepath.Join(s.cfg.CertsRoot, cacheDirName))
	}
	dir, err := s.private.make()
	if err != nil {
		s.log.Warn("cannot make a private directory for derived CA files", "err", err)
		return out
	}
	return append(out, dir)
}

// privateDir is a store's per-process directory for derived files of a read-only tree.
type privateDir struct {
	mu     sync.Mutex
	dir    string
	closed bool
}

func (p *privateDir) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dir
}

func (p *privateDir) make() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dir != "" {
		return p.dir, nil
	}
	if p.closed {
		return "", errors.New("the store is closed")
	}
	dir, err := os.MkdirTemp("", "evsesec-")
	if err != nil {
		return "", err
	}
	if err := checkPrivateDir(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	p.dir = dir
	return dir, nil
}

// remove deletes the directory and what is in it; no new one is made afterwards.
func (p *privateDir) remove() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.dir == "" {
		return nil
	}
	err := os.RemoveAll(p.dir)
	p.dir = ""
	return err
}

// checkPrivateDir makes sure dir is a directory (not a symlink) of this user that no one else
// may enter.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is open to other users (mode %v)", dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user", dir, st.Uid)
	}
	return nil
}

// prepareCacheDir makes sure dir (one of writeDirs) can be written into safely. The certs root's
// own .evsesec/ is as trustworthy as the root itself. The private directory must still be the one
// this process made.
func (s *Store) prepareCacheDir(dir string) error {
	if filepath.Dir(dir) == s.cfg.CertsRoot {
		return nil
	}
	return checkPrivateDir(dir)
}

// combinedName and hashedName are the derived files of domain t inside a cache directory.
func combinedName(t CAType) string { return string(t) + "_CA_BUNDLE.pem" }
func hashedName(t CAType) string   { return string(t) + "_CA_HASHED" }

// GetVerifyFile returns the path of a PEM file holding domain t's trust material, for an
// OpenSSL-based TLS stack's CAfile. A bundle file is returned as it is. For a bundle directory,
// evsesec writes the directory's certificates into one file under the certs root's .evsesec/
// (rewritten only when its content changes, and again whenever a certificate is installed into or
// deleted from the directory) and returns that; if the certs root cannot be written (or its lock
// not taken), the same file goes to this process's private directory (see writeDirs), which lives
// as long as the store is open; if that fails too, the file of the directory that holds its first
// valid root. "" when the domain has no bundle on disk.
func (s *Store) GetVerifyFile(t CAType) string {
	if !t.Valid() {
		return ""
	}
	if path, ok := s.bundleFileAsItIs(t); ok {
		return path
	}
	unlock, inStore, err := s.lock.lockOrLocal()
	if err != nil {
		s.log.Info("get_verify_file: the store's lock cannot be taken; derived files go to a private directory", "err", err)
	}
	defer unlock()
	b := s.readBundle(t)
	if !b.isDir {
		return s.existingFile(b.path)
	}
	cs := b.certificates()
	if len(cs) == 0 {
		return ""
	}
	for _, dir := range s.writeDirs(inStore) {
		combined := filepath.Join(dir, combinedName(t))
		if err := s.writeCombined(b, combined); err == nil {
			return combined
		} else {
			s.log.Warn("get_verify_file: cannot write the combined bundle", "domain", t, "path", combined, "err", err)
		}
	}
	now := s.now()
	for _, f := range b.files {
		for _, c := range f.certs {
			if certs.IsSelfSigned(c) && !now.Before(c.NotBefore) && !now.After(c.NotAfter) {
				s.log.Warn("get_verify_file: returning the file of one root of the directory; the directory's other certificates are not in it", "domain", t, "path", f.path)
				return f.path
			}
		}
	}
	return ""
}

// writeCombined writes the certificates of directory bundle b into the file at path, unless it
// already holds exactly them.
func (s *Store) writeCombined(b *caBundle, path string) error {
	if err := s.prepareCacheDir(filepath.Dir(path)); err != nil {
		return err
	}
	data := certs.EncodePEM(b.certificates()...)
	if old, err := s.fs.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeAtomic(s.fs, path, data, 0o644, 0o755)
}

// GetVerifyLocation returns a directory or file an OpenSSL TLS stack can use as its CApath/CAfile
// for domain t. A bundle file is returned as it is. A bundle directory gets OpenSSL's hash links
// (HASH.N → file, as c_rehash makes them) and is returned; when the directory is read-only, a
// hashed copy is made under the certs root's .evsesec/ (or, when that cannot be written or the
// store's lock not taken, in this process's private directory, see writeDirs) and that is
// returned instead. Links and copies are brought up to date
// again whenever a certificate is installed into or deleted from the directory. "" when the
// domain has no bundle on disk or no certificate in it.
func (s *Store) GetVerifyLocation(t CAType) string {
	if !t.Valid() {
		return ""
	}
	if path, ok := s.bundleFileAsItIs(t); ok {
		return path
	}
	unlock, inStore, err := s.lock.lockOrLocal()
	if err != nil {
		s.log.Info("get_verify_location: the store's lock cannot be taken; derived files go to a private directory", "err", err)
	}
	defer unlock()
	b := s.readBundle(t)
	if !b.isDir {
		return s.existingFile(b.path)
	}
	if len(b.certificates()) == 0 {
		return ""
	}
	if inStore { // without the lock the directory is not ours to change
		if err := s.rehash(b); err == nil {
			return b.path
		} else {
			s.log.Info("get_verify_location: cannot rehash the bundle directory in place; making a hashed copy", "domain", t, "err", err)
		}
	}
	for _, base := range s.writeDirs(inStore) {
		dir := filepath.Join(base, hashedName(t))
		if err := s.writeHashedCopy(b, dir); err == nil {
			return dir
		} else {
			s.log.Warn("get_verify_location: cannot write hashed copy", "dir", dir, "err", err)
		}
	}
	return ""
}

// certLinkName matches OpenSSL's certificate hash links (HASH.N). CRL links (HASH.rN) are left
// alone: evsesec never makes them and a c_rehash run may have.
var certLinkName = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

// hashLink is one hash link of a bundle directory: link name → certificate file name.
type hashLink struct {
	name, target string
}

// wantedLinks computes the links OpenSSL's by_dir lookup needs for bundle directory b: one
// SUBJECTHASH.N link per distinct (subject hash, file) pair, pointing at the file (by_dir loads
// every certificate of a file, so a file with several certificates is linked under each of their
// hashes, once). by_dir tries HASH.0, HASH.1, ... and stops at the first name that does not exist,
// so the numbers of a hash must have no gaps: they count up from 0, skipping the names in taken
// (entries that are not ours but that OpenSSL reads as well). Pairs that already have a link in
// existing come first, in the order of their current numbers, so an unchanged directory keeps its
// links and a new file only adds one.
func wantedLinks(b *caBundle, existing map[string]string, taken map[string]bool) []hashLink {
	type pair struct {
		hash, file string
		old        int // current number of its link, or -1
		order      int
	}
	index := map[[2]string]int{}
	var pairs []pair
	seenCert := map[certs.Fingerprint]bool{}
	for _, f := range b.files {
		for _, c := range f.certs {
			fp := certs.FingerprintOf(c)
			if seenCert[fp] {
				continue
			}
			seenCert[fp] = true
			k := [2]string{certs.FormatNameHash(certs.SubjectHash(c)), filepath.Base(f.path)}
			if _, ok := index[k]; !ok {
				index[k] = len(pairs)
				pairs = append(pairs, pair{hash: k[0], file: k[1], old: -1, order: len(pairs)})
			}
		}
	}
	for name, target := range existing {
		hash, num, _ := strings.Cut(name, ".")
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		if i, ok := index[[2]string{hash, target}]; ok && (pairs[i].old < 0 || n < pairs[i].old) {
			pairs[i].old = n
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool {
		a, b := pairs[i], pairs[j]
		if a.hash != b.hash {
			return a.hash < b.hash
		}
		if (a.old < 0) != (b.old < 0) {
			return a.old >= 0
		}
		if a.old != b.old {
			return a.old < b.old
		}
		return a.order < b.order
	})
	next := map[string]int{}
	out := make([]hashLink, 0, len(pairs))
	for _, p := range pairs {
		n := next[p.hash]
		for taken[fmt.Sprintf("%s.%d", p.hash, n)] {
			n++
		}
		next[p.hash] = n + 1
		out = append(out, hashLink{name: fmt.Sprintf("%s.%d", p.hash, n), target: p.file})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// rehash makes the hash links of a bundle directory: relative symlinks HASH.N → file name.
// Only links evsesec (or c_rehash) would make are managed: a symlink HASH.N whose target is a bare
// name that is missing or one of the bundle's certificate files. Everything else carrying a hash
// name — a regular file, a link to another directory, a link to a file evsesec does not read,
// CRL links — is not ours: it is never removed, and its name is skipped when numbering, so OpenSSL
// still finds it and finds ours after it.
func (s *Store) rehash(b *caBundle) error {
	if err := s.checkWritable(b.path); err != nil {
		return err
	}
	entries, err := s.fs.ReadDir(b.path)
	if err != nil {
		return err
	}
	bundleFiles := map[string]bool{}
	for _, f := range b.files {
		bundleFiles[filepath.Base(f.path)] = true
	}
	ours := map[string]string{} // managed link → target
	taken := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !certLinkName.MatchString(name) {
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			taken[name] = true
			continue
		}
		target, err := s.fs.Readlink(filepath.Join(b.path, name))
		if err != nil || strings.ContainsRune(target, '/') {
			taken[name] = true
			continue
		}
		if !bundleFiles[target] {
			if _, err := s.fs.Stat(filepath.Join(b.path, target)); !errors.Is(err, fs.ErrNotExist) {
				taken[name] = true // points at something we do not read: not ours
				continue
			}
		}
		ours[name] = target
	}
	want := wantedLinks(b, ours, taken)
	wanted := map[string]string{}
	for _, l := range want {
		wanted[l.name] = l.target
	}
	changed := false
	names := make([]string, 0, len(ours))
	for n := range ours {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if target, ok := wanted[n]; ok && target == ours[n] {
			continue
		}
		if err := s.fs.Remove(filepath.Join(b.path, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		delete(ours, n)
		changed = true
	}
	for _, l := range want {
		if _, ok := ours[l.name]; ok {
			continue
		}
		if err := s.fs.Symlink(l.target, filepath.Join(b.path, l.name)); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return s.fs.SyncDir(b.path)
	}
	return nil
}

// hasManagedLinks reports whether bundle directory b carries hash links evsesec manages, i.e.
// whether someone asked for it as a verify location.
func (s *Store) hasManagedLinks(b *caBundle) bool {
	entries, err := s.fs.ReadDir(b.path)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if certLinkName.MatchString(e.Name()) && e.Type()&fs.ModeSymlink != 0 {
			if target, err := s.fs.Readlink(filepath.Join(b.path, e.Name())); err == nil && !strings.ContainsRune(target, '/') {
				return true
			}
		}
	}
	return false
}

// hashedCopyEntries names one file per certificate: SUBJECTHASH.N, N counting per hash, each
// certificate once.
func hashedCopyEntries(b *caBundle) map[string]*x509.Certificate {
	out := map[string]*x509.Certificate{}
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
			out[fmt.Sprintf("%s.%d", h, next[h])] = c
			next[h]++
		}
	}
	return out
}

// writeHashedCopy writes one PEM file per certificate, named HASH.N, into dir (replacing what
// evsesec wrote there before), for directories it may not change.
func (s *Store) writeHashedCopy(b *caBundle, dir string) error {
	if err := s.prepareCacheDir(filepath.Dir(dir)); err != nil {
		return err
	}
	want := hashedCopyEntries(b)
	if entries, err := s.fs.ReadDir(dir); err == nil {
		for _, e := range entries {
			if _, ok := want[e.Name()]; !ok && hashLinkName.MatchString(e.Name()) {
				if err := s.fs.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
	}
	for name, c := range want {
		p := filepath.Join(dir, name)
		data := certs.EncodePEM(c)
		if old, err := s.fs.ReadFile(p); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := writeAtomic(s.fs, p, data, 0o644, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// refreshDerived brings what consumers were handed for the directory bundle at path up to date
// after a certificate was installed into it or deleted from it: the hash links in the directory,
// the combined files and the hashed copies. A TLS stack holds on to the path it was given, so a
// deleted root must stop being trusted through it, and a new one must become visible, without
// anyone asking for the path again. Derived files that were never asked for are not created. When
// a derived file cannot be brought up to date it is removed, so it never trusts a deleted CA.
func (s *Store) refreshDerived(path string) {
	var types []CAType
	for _, t := range CATypes {
		if s.cfg.CABundlePath(t) == path {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return
	}
	b := s.readBundleExact(types[0])
	if !b.isDir {
		return
	}
	if s.hasManagedLinks(b) {
		if err := s.rehash(b); err != nil {
			s.log.Error("cannot update the hash links of a CA bundle directory", "path", b.path, "err", err)
		}
	}
	empty := len(b.certificates()) == 0
	for _, t := range types {
		for _, dir := range s.cacheDirs() {
			combined := filepath.Join(dir, combinedName(t))
			if _, err := s.fs.Lstat(combined); err == nil {
				if empty {
					s.removeDerived(combined)
				} else if err := s.writeCombined(b, combined); err != nil {
					s.log.Error("cannot update the combined CA bundle; removing it", "path", combined, "err", err)
					s.removeDerived(combined)
				}
			}
			hashed := filepath.Join(dir, hashedName(t))
			if _, err := s.fs.Lstat(hashed); err == nil {
				if err := s.writeHashedCopy(b, hashed); err != nil {
					s.log.Error("cannot update the hashed copy of a CA bundle directory; emptying it", "path", hashed, "err", err)
					s.writeHashedCopy(&caBundle{}, hashed)
				}
			}
		}
	}
}

func (s *Store) removeDerived(path string) {
	if err := removeDurable(s.fs, path); err != nil {
		s.log.Error("cannot remove a derived CA file", "path", path, "err", err)
	}
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

// bundleFileAsItIs answers get_verify_file and get_verify_location for a domain whose bundle is
// a file (the EVerest default layout): the file itself, or "" when it is not there; ok is false
// for a bundle directory, whose derived files need the store's lock. A file bundle needs nothing
// written and no lock: each write replaces the file by an atomic rename, so a stat sees the old
// file or the new one. Taking the exclusive locks here would queue every reader behind the
// others and create the lock file in the certs root on a read-only call.
func (s *Store) bundleFileAsItIs(t CAType) (path string, ok bool) {
	path = s.cfg.CABundlePath(t)
	if s.isDirBundle(path) {
		return "", false
	}
	return s.existingFile(path), true
}

// existingFile is path when it is a regular file, else "": a bundle file is handed to consumers
// as it is, as long as it exists.
func (s *Store) existingFile(path string) string {
	if fi, err := s.fs.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path
	}
	return ""
}
