package store

import (
	"strings"
	"sync"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// Answers that list the whole store are kept with the views they were computed from, so a warm
// call costs the same at 2,000 leaves as at 10:
//   - get_installed_certificates depends on nothing but the CA view and the SECC leaf set (it
//     lists expired and future certificates too), so its answer is kept per (view, leaf set,
//     requested types) until either is replaced;
//   - get_v2g_ocsp_request_data also depends on the time (expired leaves are left out, chains
//     verify at now), so its answer is kept, like a leaf selection, until the next moment a
//     certificate involved starts or ends (nextChange).
//
// A view or leaf set is replaced by a new object whenever what it was read from changed (our
// writes, another process's, seen through inotify or stamps), so comparing the objects is the
// whole invalidation. The answers are shared between calls and must not be modified.

// viewMemos are the answers and pools kept with one CA view.
type viewMemos struct {
	mu        sync.Mutex
	installed map[string]installedMemo
	pools     map[string]*certs.Pool
}

// installedMemo is a kept answer of get_installed_certificates.
type installedMemo struct {
	ls  *leafSet // nil when no leaf chains were asked for
	res InstalledCertificates
}

// maxMemos bounds the kept answers and pools of one view: a caller that asks for every
// combination of types must not grow the memory without bound.
const maxMemos = 32

// installedFor returns the kept answer for types over ls.
func (v *caView) installedFor(ls *leafSet, key string) (InstalledCertificates, bool) {
	v.memos.mu.Lock()
	defer v.memos.mu.Unlock()
	m, ok := v.memos.installed[key]
	if !ok || m.ls != ls {
		return InstalledCertificates{}, false
	}
	return m.res, true
}

// keepInstalled remembers an answer. Answers over another leaf set are dropped: that set was
// replaced, and keeping it would keep the whole old leaf directory in memory.
func (v *caView) keepInstalled(ls *leafSet, key string, res InstalledCertificates) {
	v.memos.mu.Lock()
	defer v.memos.mu.Unlock()
	if v.memos.installed == nil || len(v.memos.installed) >= maxMemos {
		v.memos.installed = map[string]installedMemo{}
	}
	if ls != nil {
		for k, m := range v.memos.installed {
			if m.ls != nil && m.ls != ls {
				delete(v.memos.installed, k)
			}
		}
	}
	v.memos.installed[key] = installedMemo{ls: ls, res: res}
}

// installedKey names a request: the distinct types in request order (the order of the answer).
func installedKey(types []CertificateType) string {
	var b strings.Builder
	for _, t := range types {
		b.WriteString(string(t))
		b.WriteByte(0)
	}
	return b.String()
}

// distinctTypes returns types without repetitions, in request order. A type asked for twice is
// listed once (the reference listed it again, so a request could multiply the answer without
// bound).
func distinctTypes(types []CertificateType) []CertificateType {
	out := make([]CertificateType, 0, len(types))
	for _, t := range types {
		dup := false
		for _, o := range out {
			dup = dup || o == t
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}

// ocspRequestMemo is a kept answer of get_v2g_ocsp_request_data, right for [from, until).
type ocspRequestMemo struct {
	v           *caView
	from, until time.Time
	res         OCSPRequestDataList
}

// ocspRequestFor returns the kept answer for view v at now.
func (ls *leafSet) ocspRequestFor(v *caView, now time.Time) (OCSPRequestDataList, bool) {
	ls.memoMu.Lock()
	defer ls.memoMu.Unlock()
	m := ls.ocspReq
	if m == nil || m.v != v || now.Before(m.from) || !now.Before(m.until) {
		return OCSPRequestDataList{}, false
	}
	return m.res, true
}

// keepOCSPRequest remembers an answer computed at now.
func (ls *leafSet) keepOCSPRequest(v *caView, now time.Time, res OCSPRequestDataList) {
	m := &ocspRequestMemo{v: v, from: now, until: nextChange(ls, v, now), res: res}
	ls.memoMu.Lock()
	defer ls.memoMu.Unlock()
	ls.ocspReq = m
}
