package keys

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"testing"
)

// encryptedVariant re-encodes an encrypted PKCS#8 key after edit changed its parameters, to build
// inputs that OpenSSL would not write but a damaged or hostile file may hold.
func encryptedVariant(t *testing.T, der []byte, edit func(info *encryptedPrivateKeyInfo, p *pbes2Params, kdf *pbkdf2Params)) []byte {
	t.Helper()
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		t.Fatal(err)
	}
	edit(&info, &params, &kdf)
	if params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		params.KeyDerivationFunc.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, kdf)}
	}
	info.Algorithm.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, params)}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: mustMarshal(t, info)})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	der, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestParsePEMScryptBounds checks the scrypt limits without running scrypt: a cost beyond the
// memory bound must be refused before any derivation.
func TestParsePEMScryptBounds(t *testing.T) {
	key := testSigner(t, P256)
	enc, err := MarshalPEM(key, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	encDER := mustPEM(t, enc).Bytes
	scrypt := func(n, r, p int) []byte {
		return encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, params *pbes2Params, _ *pbkdf2Params) {
			params.KeyDerivationFunc = pkix.AlgorithmIdentifier{
				Algorithm:  oidScrypt,
				Parameters: asn1.RawValue{FullBytes: mustMarshal(t, scryptParams{Salt: []byte("saltsalt"), CostParameter: n, BlockSize: r, ParallelizationParameter: p})},
			}
		})
	}
	for _, c := range []struct{ n, r, p int }{{1 << 22, 8, 1}, {1 << 20, 8, 1}, {1000, 8, 1}, {16384, 8, 1000}, {16384, 0, 1}} {
		if _, err := ParsePEM(scrypt(c.n, c.r, c.p), []byte(testPassword)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("scrypt N=%d r=%d p=%d: %v, want ErrUnsupported", c.n, c.r, c.p, err)
		}
	}
	// Within the bounds the parameters are accepted; the key was not encrypted with scrypt, so
	// decryption then fails like a wrong password.
	if _, err := ParsePEM(scrypt(1024, 8, 1), []byte(testPassword)); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("scrypt within bounds: %v, want ErrWrongPassword", err)
	}
}

// TestDecryptPKCS8Recovers: checkPBES2 keeps inputs that make youmark/pkcs8 panic away from it;
// should one get through anyway, the panic must become a failed decryption, not a crash.
func TestDecryptPKCS8Recovers(t *testing.T) {
	enc, err := MarshalPEM(testSigner(t, P256), []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	// An IV shorter than the block makes crypto/cipher panic inside the library.
	bad := mustPEM(t, encryptedVariant(t, mustPEM(t, enc).Bytes, func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
		p.EncryptionScheme.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, make([]byte, 12))}
	})).Bytes
	if key, ok := decryptPKCS8(bad, []byte(testPassword)); ok || key != nil {
		t.Fatalf("decryptPKCS8 = %T, %v; want failure", key, ok)
	}
	if _, err := checkPBES2(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("checkPBES2 lets the bad IV through: %v", err)
	}
}
