package store

// Hostile trees: what a careless installer or an attacker with write access to one directory can
// put into the certificate tree — FIFOs, devices, sockets and symlink loops where certificates,
// keys and OCSP responses are expected, directories with certificate names, a huge garbage file,
// a bundle path that is a FIFO. Every operation must answer within a bounded time (nothing blocks
// on a FIFO or reads a device forever), the rest of the store must keep working, and the hostile
// entries must be left exactly as they were (the store never touches files it did not write).

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// hostileTimeout bounds one store operation on a hostile tree. It tells a hang (a FIFO opened
// for reading blocks forever) from slow work, so it is generous: reading 40 MB of garbage under
// the race detector on a loaded 2-core machine once took longer than 10 s.
const hostileTimeout = 60 * time.Second

// hostileWithin runs op and fails the test if it does not return in time (a FIFO opened for
// reading, a device read to its end).
func hostileWithin(t *testing.T, what string, op func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		op()
	}()
	select {
	case <-done:
	case <-time.After(hostileTimeout):
		t.Fatalf("%s did not return within %v", what, hostileTimeout)
	}
}

// hostilePoison is one hostile entry put into the tree.
type hostilePoison struct {
	name string
	// make creates the entry under root and returns its path.
	make func(t *testing.T, root string) string
	// breaksDomain names the domain whose bundle the poison replaces ("" when none).
	breaksDomain CAType
}

func hostileFIFO(rel string) func(t *testing.T, root string) string {
	return func(t *testing.T, root string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func hostileSymlink(target, rel string) func(t *testing.T, root string) string {
	return func(t *testing.T, root string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if target == "" {
			target = p // a loop
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func hostilePoisons() []hostilePoison {
	return []hostilePoison{
		{name: "FIFO as a certificate of a leaf directory", make: hostileFIFO("client/cso/SECC_LEAF_fifo.pem")},
		{name: "FIFO as a key file", make: hostileFIFO("client/csms/CSMS_LEAF_fifo.key")},
		{name: "FIFO as an OCSP response", make: hostileFIFO("client/cso/ocsp/00_00_ocsp.der")},
		{name: "FIFO as an OCSP hash file", make: hostileFIFO("client/cso/ocsp/01_00_ocsp.hash")},
		{name: "FIFO as the CSMS bundle file", make: hostileFIFO("ca/csms/CSMS_ROOT_CA.pem"), breaksDomain: CACSMS},
		{name: "/dev/zero as a certificate", make: hostileSymlink("/dev/zero", "client/cso/SECC_LEAF_zero.pem")},
		{name: "/dev/zero as a key", make: hostileSymlink("/dev/zero", "client/cso/SECC_LEAF_zero.key")},
		{name: "/dev/urandom as the MF bundle", make: hostileSymlink("/dev/urandom", "ca/mf/MF_ROOT_CA.pem"), breaksDomain: CAMF},
		{name: "symlink loop as a certificate", make: hostileSymlink("", "client/csms/CSMS_LEAF_loop.pem")},
		{name: "symlink loop as the MO bundle", make: hostileSymlink("", "ca/mo/MO_ROOT_CA.pem"), breaksDomain: CAMO},
		{name: "symlink loop as an OCSP directory", make: hostileSymlink("", "client/csms/ocsp")},
		{name: "directory with a certificate name", make: func(t *testing.T, root string) string {
			p := filepath.Join(root, "client/cso/SECC_LEAF_dir.pem")
			if err := os.MkdirAll(filepath.Join(p, "inner.pem"), 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "socket as a certificate", make: func(t *testing.T, root string) string {
			// Unix socket paths are short: listen in a short directory and move the socket.
			dir, err := os.MkdirTemp("", "hs")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			ln, err := net.Listen("unix", filepath.Join(dir, "s"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			p := filepath.Join(root, "client/csms/CSMS_LEAF_sock.pem")
			if err := os.Rename(filepath.Join(dir, "s"), p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "40 MB of garbage as a certificate", make: func(t *testing.T, root string) string {
			p := filepath.Join(root, "client/cso/SECC_LEAF_huge.pem")
			data := []byte("-----BEGIN CERTIFICATE-----\n" + strings.Repeat("QUJD", 10<<20) + "\n-----END CERTIFICATE-----\n")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "certificate of another store symlinked in", make: func(t *testing.T, root string) string {
			other := filepath.Join(t.TempDir(), "other.pem")
			c := mustRoot(t, caSpec("Planted Root"))
			if err := os.WriteFile(other, c.CertPEM(), 0o644); err != nil {
				t.Fatal(err)
			}
			return hostileSymlink(other, "client/cso/SECC_LEAF_planted.pem")(t, root)
		}},
	}
}

// hostileStat describes an entry for the "left alone" check.
func hostileStat(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return "missing: " + err.Error()
	}
	s := fi.Mode().String()
	if fi.Mode()&os.ModeSymlink != 0 {
		target, _ := os.Readlink(p)
		s += " -> " + target
	} else if fi.Mode().IsRegular() {
		s += fmt.Sprintf(" %d bytes, modified %v", fi.Size(), fi.ModTime())
	}
	return s
}

// TestHostileTreeEntries puts each hostile entry into a working store and runs every operation.
func TestHostileTreeEntries(t *testing.T) {
	p := tortureNewPKI(t)
	for _, poison := range hostilePoisons() {
		t.Run(poison.name, func(t *testing.T) {
			root := t.TempDir()
			faultfsCopyTree(t, faultfsTemplate(t, p, false), root)
			cfg := faultfsConfig(root, false)
			path := poison.make(t, root)
			before := hostileStat(path)
			s, err := Open(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			hostileOperations(t, s, p, poison.breaksDomain)
			if after := hostileStat(path); after != before {
				t.Errorf("the hostile entry changed: %s → %s", before, after)
			}
		})
	}
	t.Cleanup(func() {
		faultfsTemplates.Lock()
		defer faultfsTemplates.Unlock()
		for _, dir := range faultfsTemplates.m[p] {
			os.RemoveAll(dir)
		}
		delete(faultfsTemplates.m, p)
	})
}

// hostileOperations runs every operation of the store on s, each within hostileTimeout, and
// checks that the domains and leaves the poison does not touch keep working.
func hostileOperations(t *testing.T, s *Store, p *testpki.PKI, broken CAType) {
	t.Helper()
	seccChain := string(p.SECCLeaf.ChainPEM())
	within := func(what string, op func()) { hostileWithin(t, what, op) }
	within("verify_certificate", func() {
		if got := s.VerifyCertificate(seccChain, []LeafType{LeafV2G}); got != ValidationValid {
			t.Errorf("verify the SECC chain: %s", got)
		}
	})
	for _, d := range CATypes {
		within("is_ca_certificate_installed "+string(d), func() {
			if got := s.IsCACertificateInstalled(d); got != (d != broken) {
				t.Errorf("is_ca_certificate_installed %s = %v", d, got)
			}
		})
		within("get_verify_file "+string(d), func() { s.GetVerifyFile(d) })
		within("get_verify_location "+string(d), func() { s.GetVerifyLocation(d) })
	}
	within("get_installed_certificates", func() {
		s.GetInstalledCertificates([]CertificateType{V2GRootCertificate, MORootCertificate, CSMSRootCertificate, MFRootCertificate, V2GCertificateChain})
	})
	for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
		for _, enc := range []EncodingFormat{EncodingPEM, EncodingDER} {
			within("get_leaf_certificate_info "+string(lt)+" "+string(enc), func() {
				if in := s.GetLeafCertificateInfo(lt, enc, true); in.Status != InfoAccepted && lt.Domain() != broken {
					t.Errorf("get_leaf_certificate_info %s %s: %s", lt, enc, in.Status)
				}
			})
		}
		within("get_all_valid_certificates_info "+string(lt), func() { s.GetAllValidCertificatesInfo(lt, EncodingPEM, true) })
		within("get_leaf_expiry_days_count "+string(lt), func() { s.GetLeafExpiryDaysCount(lt) })
	}
	within("get_v2g_ocsp_request_data", func() { s.GetV2GOCSPRequestData() })
	within("get_mo_ocsp_request_data", func() { s.GetMOOCSPRequestData(string(p.Contract.ChainPEM())) })
	within("update_ocsp_cache", func() {
		h := hashOf(t, p.SECCLeaf, p.CPOSubCA2)
		if err := s.UpdateOCSPCache(h, certs.EncodeBase64(tortureOCSP(t, p.SECCLeaf.Cert, p.CPOSubCA2, time.Now(), 1))); err != nil {
			t.Errorf("update_ocsp_cache: %v", err)
		}
	})
	within("install_ca_certificate", func() {
		extra := mustRoot(t, caSpec("Hostile Extra Root"))
		if got := s.InstallCACertificate(string(extra.CertPEM()), CAV2G); got != InstallAccepted {
			t.Errorf("install into V2G: %s", got)
		}
		if got := s.DeleteCertificate(selfHash(t, extra)); got != DeleteAccepted {
			t.Errorf("delete from V2G: %s", got)
		}
	})
	if broken != "" {
		within("install_ca_certificate into the poisoned domain", func() {
			extra := mustRoot(t, caSpec("Hostile Root Of A Poisoned Domain"))
			if got := s.InstallCACertificate(string(extra.CertPEM()), broken); got != InstallWriteError {
				t.Errorf("install into %s, whose bundle is not a file: %s, want WriteError", broken, got)
			}
		})
	}
	within("generate_certificate_signing_request", func() {
		for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
			if lt.Domain() == broken {
				continue
			}
			res := s.GenerateCSR(lt, "DE", "Hostile", "CN", false)
			if res.Status != CSRAccepted {
				t.Errorf("CSR %s: %s", lt, res.Status)
				continue
			}
			issuer := p.CPOSubCA2
			chain := []*testpki.Issued{}
			if lt == LeafCSMS {
				issuer = p.CSMSRoot
			} else {
				chain = append(chain, p.CPOSubCA2, p.CPOSubCA1)
			}
			leaf, err := tortureSignCSR(res.CSR, issuer, 0)
			if err != nil {
				t.Fatal(err)
			}
			pemText := string(certs.EncodePEM(leaf)) + string(testpki.CertsPEM(chain...))
			if got := s.UpdateLeafCertificate(pemText, lt); got != InstallAccepted {
				t.Errorf("update_leaf_certificate %s: %s", lt, got)
			}
		}
	})
	within("verify_file_signature", func() { s.VerifyFileSignature("/dev/zero", string(p.FirmwareSigner.CertPEM()), "MEUCIQ==") })
	within("garbage_collect", func() { s.GarbageCollect() })
	within("update_certificate_links", func() { s.UpdateCertificateLinks() })
	within("doctor", func() { s.Diagnose() })
	within("ls", func() { s.Inventory() })
	within("usage", func() { s.Usage() })
}
