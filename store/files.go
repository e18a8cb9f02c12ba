package store

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// certFile is one file of certificates as found on disk.
type certFile struct {
	path  string
	data  []byte
	certs []*x509.Certificate
	// blocks are the PEM blocks of the certificates, with their byte ranges, so one certificate
	// can be cut out of a file without rewriting the rest. Nil for DER files.
	blocks []certs.Block
	// err is set when the file could not be parsed; such a file is skipped and reported, it
	// never hides the other files of a directory (the reference's defect 13).
	err error
}

// fileStamp identifies one version of a file: a write by anyone (our atomic rename gives a new
// inode; an editor changes size or mtime) gives a new stamp.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// fileCache keeps parsed certificate files, so a call re-parses only files that changed since
// the last call.
type fileCache struct {
	fs    FS
	mu    sync.Mutex
	files map[string]cachedFile
}

type cachedFile struct {
	stamp fileStamp
	file  *certFile
}

func newFileCache(fsys FS) *fileCache {
	return &fileCache{fs: fsys, files: make(map[string]cachedFile)}
}

// load returns the parsed content of path. It fails only when the file cannot be read; a file
// that reads but does not parse comes back with its err set.
func (c *fileCache) load(path string) (*certFile, error) { return c.loadWith(path, true) }

// loadLean is load for files whose bytes are never needed again (leaf files: nothing is cut out
// of them), so the cache keeps only the parsed certificates. With thousands of leaves that is
// most of the store's memory.
func (c *fileCache) loadLean(path string) (*certFile, error) { return c.loadWith(path, false) }

func (c *fileCache) loadWith(path string, keepData bool) (*certFile, error) {
	fi, err := c.fs.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	st := stampOf(fi)
	c.mu.Lock()
	cached, ok := c.files[path]
	c.mu.Unlock()
	if ok && cached.stamp == st && (!keepData || cached.file.data != nil || cached.file.err != nil) {
		return cached.file, nil
	}
	data, err := c.fs.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := parseCertFile(path, data)
	if !keepData && f.err == nil {
		f.data = nil
	}
	c.mu.Lock()
	c.files[path] = cachedFile{stamp: st, file: f}
	c.mu.Unlock()
	return f, nil
}

func parseCertFile(path string, data []byte) *certFile {
	f := &certFile{path: path, data: data}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		blocks, err := certs.ParsePEMBlocks(data)
		if err != nil {
			f.err = err
			return f
		}
		f.blocks = blocks
		for _, b := range blocks {
			f.certs = append(f.certs, b.Cert)
		}
		return f
	}
	cs, err := certs.ParseCertificates(data)
	if err != nil {
		f.err = err
		return f
	}
	f.certs = cs
	return f
}

// hashLinkName matches the links OpenSSL's rehash makes (HASH.N, HASH.rN): they point at files
// of the same directory and would make every certificate appear twice.
var hashLinkName = regexp.MustCompile(`^[0-9a-f]{8}\.r?[0-9]+$`)

// certFileExts are the extensions a certificate file in a bundle or leaf directory may have.
var certFileExts = map[string]bool{".pem": true, ".crt": true, ".cer": true, ".der": true}

// isCertFileName reports whether a directory entry can hold certificates.
func isCertFileName(name string) bool {
	if strings.HasPrefix(name, ".") || hashLinkName.MatchString(name) {
		return false
	}
	return certFileExts[strings.ToLower(filepath.Ext(name))]
}

// listDir returns the paths of the certificate files directly in dir (not recursive, so ocsp/
// and other subdirectories are not read), sorted by name. A missing directory is empty.
func (s *Store) listDir(dir string) ([]string, error) {
	entries, err := s.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !isCertFileName(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			if fi, err := s.fs.Stat(p); err != nil || !fi.Mode().IsRegular() {
				continue
			}
		} else if !e.Type().IsRegular() {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// loadFiles loads every path, logging and skipping files that cannot be read or parsed.
func (s *Store) loadFiles(paths []string) []*certFile { return s.loadFilesWith(paths, s.files.load) }

// loadLeafFiles is loadFiles for leaf directories, keeping no file bytes.
func (s *Store) loadLeafFiles(paths []string) []*certFile {
	return s.loadFilesWith(paths, s.files.loadLean)
}

func (s *Store) loadFilesWith(paths []string, load func(string) (*certFile, error)) []*certFile {
	var out []*certFile
	for _, p := range paths {
		f, err := load(p)
		if err != nil {
			s.log.Warn("skipping unreadable certificate file", "path", p, "err", err)
			continue
		}
		if f.err != nil {
			s.log.Warn("skipping certificate file that does not parse", "path", p, "err", f.err)
			continue
		}
		out = append(out, f)
	}
	return out
}
