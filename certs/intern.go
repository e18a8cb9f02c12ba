package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"runtime"
	"sync"
	"weak"
)

// The same certificate is stored many times in an EV charger's store: every leaf's chain file
// carries the same CPO sub-CAs. Parsing each copy into its own x509.Certificate would make memory
// grow with the number of copies, so parsed certificates are shared by their DER: a copy that is
// already parsed (and still in use somewhere) is returned as it is. Entries are weak and removed
// when the certificate is collected, so the table never outgrows what is in use. Parsed
// certificates are never modified anywhere in evsesec, which makes sharing them safe.
var interned = struct {
	sync.Mutex
	m map[Fingerprint]weak.Pointer[x509.Certificate]
}{m: map[Fingerprint]weak.Pointer[x509.Certificate]{}}

// parseDER parses one DER certificate, sharing the result with earlier parses of the same bytes.
func parseDER(der []byte) (*x509.Certificate, error) {
	fp := Fingerprint(sha256.Sum256(der))
	interned.Lock()
	if wp, ok := interned.m[fp]; ok {
		if c := wp.Value(); c != nil {
			interned.Unlock()
			return c, nil
		}
	}
	interned.Unlock()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	interned.Lock()
	if wp, ok := interned.m[fp]; ok {
		if old := wp.Value(); old != nil {
			interned.Unlock()
			return old, nil
		}
	}
	interned.m[fp] = weak.Make(c)
	interned.Unlock()
	runtime.AddCleanup(c, func(fp Fingerprint) {
		interned.Lock()
		if wp, ok := interned.m[fp]; ok && wp.Value() == nil {
			delete(interned.m, fp)
		}
		interned.Unlock()
	}, fp)
	return c, nil
}
