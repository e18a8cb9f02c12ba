package bench

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// BenchmarkGetAllValidCertificatesInfoWarm: the newest valid leaf per V2G root (EvseV2G's call).
func BenchmarkGetAllValidCertificatesInfoWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		s.GetAllValidCertificatesInfo(store.LeafV2G, store.EncodingPEM, false)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if r := s.GetAllValidCertificatesInfo(store.LeafV2G, store.EncodingPEM, false); r.Status != store.InfoAccepted {
				b.Fatal(r.Status)
			}
		}
	})
}

// BenchmarkGetInstalledCertificatesWarm lists every root and every SECC chain (it grows with the
// store by nature: one entry per leaf).
func BenchmarkGetInstalledCertificatesWarm(b *testing.B) {
	types := []store.CertificateType{store.V2GRootCertificate, store.MORootCertificate, store.CSMSRootCertificate, store.MFRootCertificate, store.V2GCertificateChain}
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		s.GetInstalledCertificates(types)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if r := s.GetInstalledCertificates(types); r.Status != store.InstalledAccepted {
				b.Fatal(r.Status)
			}
		}
	})
}

// BenchmarkVerifyCertificateWarm verifies the 3-certificate SECC chain (leaf, Sub-CA 2, Sub-CA 1)
// against the V2G domain; BenchmarkGoX509Verify is Go's own x509.Verify on the same chain and
// root, the yardstick of the target.
func BenchmarkVerifyCertificateWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		chain := string(st.PKI.SECCLeaf.ChainPEM())
		if r := s.VerifyCertificate(chain, []store.LeafType{store.LeafV2G}); r != store.ValidationValid {
			b.Fatal(r)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.VerifyCertificate(chain, []store.LeafType{store.LeafV2G})
		}
	})
}

func BenchmarkGoX509Verify(b *testing.B) {
	st := generated(b, 10)
	// The same work as the store's call: the PEM chain is parsed, then verified.
	chain := st.PKI.SECCLeaf.ChainPEM()
	roots := x509.NewCertPool()
	roots.AddCert(st.PKI.V2GRoot.Cert)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cs, err := certs.ParseCertificates(chain)
		if err != nil {
			b.Fatal(err)
		}
		inter := x509.NewCertPool()
		for _, c := range cs[1:] {
			inter.AddCert(c)
		}
		if _, err := cs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInstallCA installs a new root and deletes it again (two writes per iteration).
func BenchmarkInstallCA(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, mutableCopy(b, st))
		root, err := testpki.SelfSigned(testpki.Spec{CommonName: "BenchRoot", IsCA: true, MaxPathLen: -1})
		if err != nil {
			b.Fatal(err)
		}
		pemText := string(root.CertPEM())
		h, _ := certs.ComputeHashData(root.Cert, root.Cert, certs.SHA256)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if r := s.InstallCACertificate(pemText, store.CAV2G); r != store.InstallAccepted {
				b.Fatal(r)
			}
			if r := s.DeleteCertificate(h); r != store.DeleteAccepted {
				b.Fatal(r)
			}
		}
	})
}

// BenchmarkCSRAndUpdateLeaf makes a CSR, signs it (outside the timer) and installs the leaf.
func BenchmarkCSRAndUpdateLeaf(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, mutableCopy(b, st))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			csr := s.GenerateCSR(store.LeafV2G, "DE", "Bench", "SECCBENCH", false)
			if csr.Status != store.CSRAccepted {
				b.Fatal(csr.Status)
			}
			b.StopTimer()
			chain := signForBench(b, st, csr.CSR)
			b.StartTimer()
			if r := s.UpdateLeafCertificate(chain, store.LeafV2G); r != store.InstallAccepted {
				b.Fatal(r)
			}
		}
	})
}

// BenchmarkGetV2GOCSPRequestData lists the OCSP request data of every SECC chain (grows with the
// store by nature).
func BenchmarkGetV2GOCSPRequestData(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		s.GetV2GOCSPRequestData()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GetV2GOCSPRequestData()
		}
	})
}

// BenchmarkGarbageCollect runs a GC pass over a store under its limits.
func BenchmarkGarbageCollect(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, mutableCopy(b, st))
		s.GarbageCollect()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GarbageCollect()
		}
	})
}

func signForBench(b *testing.B, st *Store, csrPEM string) string {
	b.Helper()
	csrCerts, err := parseCSR(csrPEM)
	if err != nil {
		b.Fatal(err)
	}
	ca := st.PKI.CPOSubCA2
	now := time.Now()
	der, err := x509.CreateCertificate(randReader, &x509.Certificate{
		SerialNumber: newSerial(), RawSubject: csrCerts.RawSubject, NotBefore: now.Add(-time.Minute), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, BasicConstraintsValid: true,
	}, ca.Cert, csrCerts.PublicKey, ca.Key)
	if err != nil {
		b.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return string(certs.EncodePEM(leaf, st.PKI.CPOSubCA2.Cert, st.PKI.CPOSubCA1.Cert))
}
