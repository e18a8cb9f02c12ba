package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"
)

// testKeys caches one generated key per algorithm: RSA generation takes seconds on a small CI
// machine, and no test needs two different keys of the same algorithm.
var testKeys struct {
	sync.Mutex
	m map[Algorithm]crypto.Signer
}

// testSigner returns the cached key of an algorithm, generating it on first use.
func testSigner(t testing.TB, alg Algorithm) crypto.Signer {
	t.Helper()
	testKeys.Lock()
	defer testKeys.Unlock()
	if k, ok := testKeys.m[alg]; ok {
		return k
	}
	k, err := Generate(alg, rand.Reader)
	if err != nil {
		t.Fatalf("Generate(%s): %v", alg, err)
	}
	if testKeys.m == nil {
		testKeys.m = map[Algorithm]crypto.Signer{}
	}
	testKeys.m[alg] = k
	return k
}

func TestParseAlgorithm(t *testing.T) {
	tests := []struct {
		in   string
		want Algorithm
	}{
		{"P-256", P256}, {"p-256", P256}, {"P256", P256}, {"prime256v1", P256}, {"secp256r1", P256},
		{"EC-P256", P256}, {"ec_p256", P256}, {" ecdsa-p256 ", P256}, {"NISTP256", P256},
		{"P-384", P384}, {"secp384r1", P384}, {"ec-p384", P384},
		{"P-521", P521}, {"SECP521R1", P521}, {"ec-p521", P521},
		{"RSA-2048", RSA2048}, {"rsa2048", RSA2048}, {"rsa:2048", RSA2048}, {"RSA_2048", RSA2048},
		{"RSA-3072", RSA3072}, {"rsa3072", RSA3072},
	}
	for _, tt := range tests {
		got, err := ParseAlgorithm(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "P-224", "rsa1024", "rsa-4096", "ed25519", "secp256k1", "p 256"} {
		if got, err := ParseAlgorithm(bad); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want ErrUnsupported", bad, got, err)
		}
	}
	for _, alg := range Algorithms() {
		if got, err := ParseAlgorithm(alg.String()); err != nil || got != alg {
			t.Errorf("ParseAlgorithm(%q) does not round-trip: %q, %v", alg, got, err)
		}
	}
}

// TestGenerate checks each algorithm's key type and size, that AlgorithmOf recognises it, and
// that the signature algorithm it names really works with the key, by making a certificate.
func TestGenerate(t *testing.T) {
	tests := []struct {
		alg     Algorithm
		bits    int
		sigAlg  x509.SignatureAlgorithm
		isECDSA bool
	}{
		{P256, 256, x509.ECDSAWithSHA256, true},
		{P384, 384, x509.ECDSAWithSHA384, true},
		{P521, 521, x509.ECDSAWithSHA512, true},
		{RSA2048, 2048, x509.SHA256WithRSA, false},
		{RSA3072, 3072, x509.SHA256WithRSA, false},
	}
	if len(tests) != len(Algorithms()) {
		t.Fatalf("table covers %d algorithms, Algorithms() has %d", len(tests), len(Algorithms()))
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			key := testSigner(t, tt.alg)
			switch k := key.(type) {
			case *ecdsa.PrivateKey:
				if !tt.isECDSA || k.Curve.Params().BitSize != tt.bits {
					t.Fatalf("got ECDSA key on %s", k.Curve.Params().Name)
				}
			case *rsa.PrivateKey:
				if tt.isECDSA || k.N.BitLen() != tt.bits {
					t.Fatalf("got RSA key of %d bits", k.N.BitLen())
				}
			default:
				t.Fatalf("got %T", key)
			}
			if got, err := AlgorithmOf(key.Public()); err != nil || got != tt.alg {
				t.Errorf("AlgorithmOf = %q, %v", got, err)
			}
			if got := tt.alg.SignatureAlgorithm(); got != tt.sigAlg {
				t.Fatalf("SignatureAlgorithm = %v, want %v", got, tt.sigAlg)
			}
			tmpl := &x509.Certificate{
				SerialNumber:       big.NewInt(1),
				Subject:            pkix.Name{CommonName: "generate test"},
				NotBefore:          time.Now().Add(-time.Hour),
				NotAfter:           time.Now().Add(time.Hour),
				SignatureAlgorithm: tt.alg.SignatureAlgorithm(),
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
			if err != nil {
				t.Fatalf("CreateCertificate with %v: %v", tt.sigAlg, err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if cert.SignatureAlgorithm != tt.sigAlg {
				t.Errorf("certificate signed with %v, want %v", cert.SignatureAlgorithm, tt.sigAlg)
			}
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Errorf("self-signature does not verify: %v", err)
			}
		})
	}
}

func TestGenerateUnknown(t *testing.T) {
	for _, alg := range []Algorithm{"", "P-224", "RSA-1024", "prime256v1"} {
		if k, err := Generate(alg, nil); !errors.Is(err, ErrUnsupported) || k != nil {
			t.Errorf("Generate(%q) = %T, %v; want ErrUnsupported", alg, k, err)
		}
		if got := alg.SignatureAlgorithm(); got != x509.UnknownSignatureAlgorithm {
			t.Errorf("%q.SignatureAlgorithm() = %v", alg, got)
		}
	}
}

func TestAlgorithmOfUnsupported(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224 := &ecdsa.PublicKey{Curve: elliptic.P224()}
	rsa4096 := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 4095), E: 65537}
	for _, pub := range []crypto.PublicKey{nil, edPriv.Public(), p224, rsa4096, &ecdsa.PublicKey{}, &rsa.PublicKey{}} {
		if got, err := AlgorithmOf(pub); !errors.Is(err, ErrUnsupported) {
			t.Errorf("AlgorithmOf(%T) = %q, %v; want ErrUnsupported", pub, got, err)
		}
	}
}
