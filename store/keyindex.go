package store

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/evsesec/evsesec/keys"
)

// keyFile is what the store knows about one private key file: the fingerprint of its public key
// (so a certificate finds its key by a map lookup, not by decrypting every key), or why it could
// not be read.
type keyFile struct {
	path string
	kind keys.Kind // where the key lives: file, tpm, pkcs11
	pub  crypto.PublicKey
	fp   string // keys.Fingerprint of pub
	err  error  // the key could not be read (wrong password, unsupported format)
}

// keyCache keeps the public half of every key file per file version, so each key is decrypted
// at most once per change (the reference decrypted every key of the directory on every call).
type keyCache struct {
	mu    sync.Mutex
	files map[string]cachedKey
}

type cachedKey struct {
	stamp fileStamp
	key   *keyFile
}

// keyFileExts are the extensions of key files: the reference's .key and .tkey (TPM or custom
// provider), and .pem for keys an integrator dropped in with that name.
var keyFileExts = map[string]bool{".key": true, ".tkey": true, ".pem": true}

// listKeys returns the key files directly in dir, sorted by name.
func (s *Store) listKeys(dir string) []*keyFile {
	entries, err := s.fs.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot list key directory", "path", dir, "err", err)
		}
		return nil
	}
	var paths []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !keyFileExts[strings.ToLower(filepath.Ext(name))] {
			continue
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	s.forgetGoneKeys(dir, paths)
	var out []*keyFile
	for _, p := range s.dropAliases(paths) {
		if k := s.loadKey(p); k != nil {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// forgetGoneKeys drops the cached keys of dir that are no longer among its key files, so the
// cache does not grow with every CSR key that came and went.
func (s *Store) forgetGoneKeys(dir string, present []string) {
	keep := make(map[string]bool, len(present))
	for _, p := range present {
		keep[p] = true
	}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	for p := range s.keys.files {
		if filepath.Dir(p) == dir && !keep[p] {
			delete(s.keys.files, p)
		}
	}
}

// loadKey reads the public key of one key file, from the cache when the file is unchanged. It
// returns nil for files that hold no private key at all (a certificate file in a shared
// directory).
func (s *Store) loadKey(path string) *keyFile {
	fi, err := s.fs.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	st := stampOf(fi)
	s.keys.mu.Lock()
	c, ok := s.keys.files[path]
	s.keys.mu.Unlock()
	if ok && c.stamp == st {
		return c.key
	}
	data, err := s.fs.ReadFile(path)
	if err != nil {
		s.log.Warn("cannot read key file", "path", path, "err", err)
		return nil
	}
	var k *keyFile
	if strings.EqualFold(filepath.Ext(path), ".pem") && !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		k = nil
	} else {
		k = &keyFile{path: path, kind: keys.KindOf(data)}
		pub, err := s.keyBackend().PublicKey(data)
		if err != nil {
			k.err = err
		} else {
			k.pub, k.fp = pub, keys.Fingerprint(pub)
		}
	}
	s.keys.mu.Lock()
	if s.keys.files == nil {
		s.keys.files = make(map[string]cachedKey)
	}
	s.keys.files[path] = cachedKey{stamp: st, key: k}
	s.keys.mu.Unlock()
	return k
}

// keyBackend is the backend for the store's key files: each file goes to the backend of its
// kind (software, TPM, PKCS#11).
func (s *Store) keyBackend() *keyBackends { return s.keyBackends }

// keyLookup is the outcome of looking for a certificate's private key.
type keyLookup struct {
	key *keyFile
	// unreadable lists key files that could not be read (their error says why: wrong
	// password, unsupported): when no key matched, they explain "no key" in the log.
	unreadable []*keyFile
}

// findKey looks for the key of cert in keyDir: first the file named like the certificate's file
// (the store names keys after their certificate), then every key of the directory by public key.
func (s *Store) findKey(cert *x509.Certificate, certPath, keyDir string) keyLookup {
	fp := keys.Fingerprint(cert.PublicKey)
	if certPath != "" {
		stem := strings.TrimSuffix(filepath.Base(certPath), filepath.Ext(certPath))
		for _, ext := range []string{".key", ".tkey"} {
			p := filepath.Join(keyDir, stem+ext)
			if fi, err := s.fs.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				continue // a link (update_certificate_links) is never the key's own file
			}
			if k := s.loadKey(p); k != nil && k.err == nil && k.fp == fp {
				return keyLookup{key: k}
			}
		}
	}
	var res keyLookup
	for _, k := range s.listKeys(keyDir) {
		switch {
		case k.err != nil:
			res.unreadable = append(res.unreadable, k)
		case k.fp == fp:
			res.key = k
			return res
		}
	}
	return res
}

// certificateKeys returns the fingerprints of the public keys of every certificate the store
// holds: the CA bundles of every domain and every certificate file of the given leaf sets. A key
// file whose key is in this set belongs to a certificate and is never garbage.
func (s *Store) certificateKeys(v *caView, sets []*leafSet) map[string]bool {
	inUse := map[string]bool{}
	// Parsed certificates are shared by their DER (certs.parseDER), so a leaf of a single file and
	// its chain file, and the sub-CAs every chain file repeats, are one pointer: each key is
	// encoded and hashed once, not once per file that holds it (a store of leaves with chain files
	// holds four certificates per leaf, one of them new).
	seen := map[*x509.Certificate]bool{}
	add := func(files []*certFile) {
		for _, f := range files {
			for _, c := range f.certs {
				if seen[c] {
					continue
				}
				seen[c] = true
				if fp := keys.Fingerprint(c.PublicKey); fp != "" {
					inUse[fp] = true
				}
			}
		}
	}
	for _, t := range CATypes {
		add(v.bundles[t].files)
	}
	for _, ls := range sets {
		add(ls.files)
	}
	return inUse
}

// dropAliases removes from paths (the entries of one directory) the symlinks that are not store
// files of their own: the links update_certificate_links maintains, and any symlink to a regular
// file of the same list. Otherwise a link such as client/cso/SECC_LEAF.pem → SECC_LEAF_<id>.pem
// would be read as a second file of its leaf, could be reported as the leaf's file, and the next
// link update would point it at itself. A regular file is never dropped.
func (s *Store) dropAliases(paths []string) []string {
	managed := map[string]bool{}
	for _, l := range []string{s.cfg.SECCLeafCertLink, s.cfg.SECCLeafKeyLink, s.cfg.CPOCertChainLink} {
		if l != "" {
			managed[filepath.Clean(s.cfg.Resolve(l))] = true
		}
	}
	type fileID struct{ dev, ino uint64 }
	idOf := func(fi fs.FileInfo) (fileID, bool) {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fileID{}, false
		}
		return fileID{uint64(st.Dev), uint64(st.Ino)}, true
	}
	regular := map[fileID]bool{}
	isLink := make([]bool, len(paths))
	for i, p := range paths {
		fi, err := s.fs.Lstat(p)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			isLink[i] = true
			continue
		}
		if id, ok := idOf(fi); ok {
			regular[id] = true
		}
	}
	out := paths[:0:0]
	for i, p := range paths {
		if isLink[i] {
			if managed[filepath.Clean(p)] {
				continue
			}
			if fi, err := s.fs.Stat(p); err == nil {
				if id, ok := idOf(fi); ok && regular[id] {
					continue
				}
			}
		}
		out = append(out, p)
	}
	return out
}
