package bench

import (
	"testing"

	"github.com/evsesec/evsesec/store"
)

// The read commands a station makes on every TLS connection and at every boot, each warm (the
// store open, the command called once before timing). Each must cost the same at 2,000 leaves as
// at 10: the store keeps what it read and the answers that list the whole store.

// BenchmarkGetLeafExpiryDaysCountWarm: days left of the current SECC leaf (OCPP's daily check).
func BenchmarkGetLeafExpiryDaysCountWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		if s.GetLeafExpiryDaysCount(store.LeafV2G) <= 0 {
			b.Fatal("no valid SECC leaf")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GetLeafExpiryDaysCount(store.LeafV2G)
		}
	})
}

// BenchmarkIsCACertificateInstalledWarm: whether the V2G domain has a valid trust anchor.
func BenchmarkIsCACertificateInstalledWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		if !s.IsCACertificateInstalled(store.CAV2G) {
			b.Fatal("no V2G root")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.IsCACertificateInstalled(store.CAV2G)
		}
	})
}

// BenchmarkGetVerifyFileWarm: the V2G bundle for a TLS stack's CAfile.
func BenchmarkGetVerifyFileWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		if s.GetVerifyFile(store.CAV2G) == "" {
			b.Fatal("no verify file")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GetVerifyFile(store.CAV2G)
		}
	})
}

// BenchmarkGetVerifyLocationWarm: the V2G bundle for a TLS stack's CApath/CAfile.
func BenchmarkGetVerifyLocationWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		if s.GetVerifyLocation(store.CAV2G) == "" {
			b.Fatal("no verify location")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GetVerifyLocation(store.CAV2G)
		}
	})
}

// BenchmarkGetMOOCSPRequestDataWarm: the OCSP request data of a contract chain (here the SECC
// chain, which verifies against the V2G domain the same way). Its input varies, so it is not
// kept; it must only do work that depends on the input.
func BenchmarkGetMOOCSPRequestDataWarm(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		s := open(b, st)
		chain := string(st.PKI.SECCLeaf.ChainPEM())
		if r := s.GetMOOCSPRequestData(chain); len(r.List) == 0 {
			b.Fatal("no request data")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s.GetMOOCSPRequestData(chain)
		}
	})
}
