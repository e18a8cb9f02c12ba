package store

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/evsesec/evsesec/certs"
)

// caBundle is the trust material of one domain as found on disk: one file, or the certificate
// files of one directory.
type caBundle struct {
	ca    CAType
	path  string
	isDir bool
	files []*certFile
	// unreadable are the bundle's files that exist but could not be read or parsed; they are
	// skipped (never hiding the rest of a directory) but must not be written to blindly.
	unreadable []string
}

// certificates returns the bundle's certificates in file order, each once.
func (b *caBundle) certificates() []*x509.Certificate {
	var out []*x509.Certificate
	seen := map[certs.Fingerprint]bool{}
	for _, f := range b.files {
		for _, c := range f.certs {
			fp := certs.FingerprintOf(c)
			if !seen[fp] {
				seen[fp] = true
				out = append(out, c)
			}
		}
	}
	return out
}

func (b *caBundle) contains(fp certs.Fingerprint) bool {
	for _, f := range b.files {
		for _, c := range f.certs {
			if certs.FingerprintOf(c) == fp {
				return true
			}
		}
	}
	return false
}

// isDirBundle decides whether a bundle path is a directory: by what is on disk, and for a path
// that does not exist yet by its name (no extension means a directory, as in the reference).
func (s *Store) isDirBundle(path string) bool {
	if fi, err := s.fs.Stat(path); err == nil {
		return fi.IsDir()
	}
	return filepath.Ext(path) == ""
}

// readBundle loads the bundle of domain t. A missing bundle is empty; it is not created.
func (s *Store) readBundle(t CAType) *caBundle { return s.readBundleWith(t, s.files.load) }

// readBundleExact is readBundle for operations that write the bundle: every file is read and
// compared with the cached version byte for byte (see loadExact).
func (s *Store) readBundleExact(t CAType) *caBundle { return s.readBundleWith(t, s.loadExact) }

func (s *Store) readBundleWith(t CAType, load func(string) (*certFile, error)) *caBundle {
	b := &caBundle{ca: t, path: s.cfg.CABundlePath(t)}
	b.isDir = s.isDirBundle(b.path)
	var paths []string
	if b.isDir {
		var err error
		if paths, err = s.listDir(b.path); err != nil {
			s.log.Warn("cannot list CA bundle directory", "domain", t, "path", b.path, "err", err)
		}
	} else if _, err := s.fs.Stat(b.path); !errors.Is(err, fs.ErrNotExist) {
		paths = []string{b.path}
	}
	for _, p := range paths {
		f, err := load(p)
		if err == nil {
			err = f.err
		}
		if err != nil {
			s.log.Warn("skipping CA bundle file that cannot be read or parsed", "domain", t, "path", p, "err", err)
			b.unreadable = append(b.unreadable, p)
			continue
		}
		b.files = append(b.files, f)
	}
	return b
}

// loadExact returns the parsed content of path exactly as it is on disk now, reusing the cached
// parse only when the bytes are the same. The file cache trusts a file's stamp (mtime, size,
// inode); a file another process rewrote within one timestamp tick, with the same size and a
// recycled inode number, keeps the stamp of the cached version. Reading is fine with that rare
// staleness, but a write built on a stale copy (cutting a certificate out of it) would write the
// other process's change away, so operations that write use this instead.
func (s *Store) loadExact(path string) (*certFile, error) {
	fi, err := s.fs.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	data, err := s.fs.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := s.files
	c.mu.Lock()
	defer c.mu.Unlock()
	if cached, ok := c.files[path]; ok && bytes.Equal(cached.file.data, data) {
		return cached.file, nil
	}
	f := parseCertFile(path, data)
	// The stamp was taken before the read: if the file changed in between, the stamp on disk
	// differs from this one and the next cached load parses again.
	c.files[path] = cachedFile{stamp: stampOf(fi), file: f}
	return f, nil
}

// caView is every domain's bundle read at one moment, with the pools built from them.
type caView struct {
	s       *Store
	bundles map[CAType]*caBundle
	// all holds the certificates of every domain: it finds the issuer of any CA certificate,
	// whichever domain it is in, for hash data.
	all *certs.Pool
	// memos are answers and domain pools computed from this view (memo.go).
	memos viewMemos
}

// readCAs returns every domain's bundle, from memory while no bundle has changed.
func (s *Store) readCAs() *caView { return s.cachedCAs() }

// readCAsExact is readCAs for operations that write bundles (see loadExact).
func (s *Store) readCAsExact() *caView { return s.readCAsWith(s.readBundleExact) }

func (s *Store) readCAsWith(read func(CAType) *caBundle) *caView {
	v := &caView{s: s, bundles: make(map[CAType]*caBundle, len(CATypes))}
	var all []*certFile
	for _, t := range CATypes {
		b := read(t)
		v.bundles[t] = b
		all = append(all, b.files...)
	}
	v.all = s.pools.get(all)
	return v
}

// domainPool returns the pool of the given domains' certificates. It is kept with the view:
// every leaf verification and verify_certificate asks for one, and a view never changes.
func (v *caView) domainPool(types ...CAType) *certs.Pool {
	var key string
	if len(types) == 1 {
		key = string(types[0])
	} else {
		var b strings.Builder
		for _, t := range types {
			b.WriteString(string(t))
			b.WriteByte(0)
		}
		key = b.String()
	}
	v.memos.mu.Lock()
	p, ok := v.memos.pools[key]
	v.memos.mu.Unlock()
	if ok {
		return p
	}
	p = v.buildDomainPool(types)
	v.memos.mu.Lock()
	if v.memos.pools == nil || len(v.memos.pools) >= maxMemos {
		v.memos.pools = map[string]*certs.Pool{}
	}
	v.memos.pools[key] = p
	v.memos.mu.Unlock()
	return p
}

func (v *caView) buildDomainPool(types []CAType) *certs.Pool {
	var files []*certFile
	seen := map[string]bool{}
	for _, t := range types {
		for _, f := range v.bundles[t].files {
			if !seen[f.path] {
				seen[f.path] = true
				files = append(files, f)
			}
		}
	}
	return v.s.pools.get(files)
}

// poolCache keeps pools keyed by the exact file versions they were built from. The file cache
// hands out the same *certFile for an unchanged file, so an unchanged store reuses its pools and
// their cached signature checks.
//
// The key is made of the files' addresses, so every entry also holds the files themselves: an
// address is only unique while its object is alive, and a file version dropped from the file
// cache could otherwise be collected and its address handed to the next version of the same
// file, which would then get the old version's pool.
type poolCache struct {
	mu    sync.Mutex
	pools map[string]pooled
}

type pooled struct {
	files []*certFile // keeps the keyed addresses alive; compared on every hit
	pool  *certs.Pool
}

func (c *poolCache) get(files []*certFile) *certs.Pool {
	var key strings.Builder
	for _, f := range files {
		fmt.Fprintf(&key, "%p;", f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.pools[key.String()]; ok && slices.Equal(e.files, files) {
		return e.pool
	}
	var cs []*x509.Certificate
	for _, f := range files {
		cs = append(cs, f.certs...)
	}
	p := certs.NewPool(cs...)
	if c.pools == nil || len(c.pools) > 64 {
		c.pools = make(map[string]pooled)
	}
	c.pools[key.String()] = pooled{files: slices.Clone(files), pool: p}
	return p
}

// bundleFileName is the name of a file evsesec writes into a directory bundle. It is derived
// from the certificate, so installing the same certificate twice finds the same file, and it
// says whether the certificate is a root (the reference named sub-CAs *_ROOT_* too).
func bundleFileName(t CAType, c *x509.Certificate, selfSigned bool) string {
	fp := certs.FingerprintOf(c)
	kind := "SUB_CA"
	if selfSigned {
		kind = "ROOT_CA"
	}
	return fmt.Sprintf("%s_%s_%s.pem", t, kind, hex.EncodeToString(fp[:8]))
}

// addToBundle writes c into bundle b: a new file in a directory bundle, or appended to a file
// bundle, keeping the file's existing bytes (comments and all) as they are.
func (s *Store) addToBundle(b *caBundle, c *x509.Certificate, selfSigned bool) (string, error) {
	pemBytes := certs.EncodePEM(c)
	if b.isDir {
		p := filepath.Join(b.path, bundleFileName(b.ca, c, selfSigned))
		return p, writeAtomic(s.fs, p, pemBytes, 0o644, 0o755)
	}
	old, err := s.fs.ReadFile(b.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return b.path, fmt.Errorf("read %s: %w", b.path, err)
	}
	perm := fs.FileMode(0o644)
	if fi, err := s.fs.Stat(b.path); err == nil {
		perm = fi.Mode().Perm()
	}
	data := append([]byte{}, old...)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, pemBytes...)
	return b.path, writeAtomic(s.fs, b.path, data, perm, 0o755)
}

// removeFromFile cuts the certificates whose fingerprints are in drop out of file f. The rest of
// the file stays byte for byte. A file of a directory that is left without any PEM block is
// removed; a bundle file is kept even when empty (the configured path stays valid).
func (s *Store) removeFromFile(f *certFile, drop map[certs.Fingerprint]bool, removeIfEmpty bool) (bool, error) {
	var out []byte
	changed := false
	if f.blocks != nil {
		last := 0
		for _, blk := range f.blocks {
			if !drop[certs.FingerprintOf(blk.Cert)] {
				continue
			}
			out = append(out, f.data[last:blk.Start]...)
			last = blk.End
			changed = true
		}
		out = append(out, f.data[last:]...)
	} else {
		for _, c := range f.certs {
			if drop[certs.FingerprintOf(c)] {
				changed = true
				continue
			}
			out = append(out, c.Raw...)
		}
	}
	if !changed {
		return false, nil
	}
	if removeIfEmpty && (len(bytes.TrimSpace(out)) == 0 || (f.blocks != nil && !bytes.Contains(out, []byte("-----BEGIN")))) {
		return true, removeDurable(s.fs, f.path)
	}
	perm := fs.FileMode(0o644)
	if fi, err := s.fs.Stat(f.path); err == nil {
		perm = fi.Mode().Perm()
	}
	return true, writeAtomic(s.fs, f.path, out, perm, 0o755)
}
