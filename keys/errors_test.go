package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// sentinels are the errors every failure of ParsePEM must wrap.
var sentinels = []error{ErrNoKey, ErrPasswordRequired, ErrWrongPassword, ErrUnsupported, ErrMalformed}

// sentinelOf returns the package sentinel err wraps, or nil.
func sentinelOf(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

func TestParsePEMErrors(t *testing.T) {
	key := testSigner(t, P256)
	enc, err := MarshalPEM(key, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	encDER := mustPEM(t, enc).Bytes
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	dsaDER := mustMarshal(t, privateKeyInfo{
		Algorithm:  pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}},
		PrivateKey: []byte{2, 1, 1},
	})
	brainpoolDER := mustMarshal(t, privateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{
			Algorithm:  oidECDSA,
			Parameters: asn1.RawValue{FullBytes: mustMarshal(t, asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7})},
		},
		PrivateKey: []byte{0x30, 0},
	})
	p := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

	tests := []struct {
		name     string
		data     []byte
		password string
		want     error
	}{
		{"nil", nil, "", ErrNoKey},
		{"blank", []byte("  \n\t\n"), "", ErrNoKey},
		{"garbage", []byte("this is not a key file at all, just words"), testPassword, ErrNoKey},
		{"binary garbage", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 40), testPassword, ErrNoKey},
		{"certificate only", selfSignedPEM(t, key), testPassword, ErrNoKey},
		{"public key only", p("PUBLIC KEY", []byte{0x30, 0}), "", ErrNoKey},
		{"TPM key", p("TSS2 PRIVATE KEY", []byte{0x30, 0}), "", ErrUnsupported},
		{"OpenSSH key", p("OPENSSH PRIVATE KEY", []byte("openssh-key-v1")), "", ErrUnsupported},
		{"DSA traditional", p("DSA PRIVATE KEY", []byte{0x30, 0}), "", ErrUnsupported},
		{"PKCS#8 garbage", p("PRIVATE KEY", []byte("garbage")), "", ErrMalformed},
		{"SEC1 garbage", p("EC PRIVATE KEY", []byte("garbage")), "", ErrMalformed},
		{"PKCS#1 garbage", p("RSA PRIVATE KEY", []byte("garbage")), "", ErrMalformed},
		{"encrypted garbage", p("ENCRYPTED PRIVATE KEY", []byte("garbage")), testPassword, ErrMalformed},
		{"broken base64", []byte("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"), "", ErrMalformed},
		{"missing END line", enc[:len(enc)-30], testPassword, ErrMalformed},
		{"X25519 cannot sign", p("PRIVATE KEY", x25519DER), "", ErrUnsupported},
		{"DSA in PKCS#8", p("PRIVATE KEY", dsaDER), "", ErrUnsupported},
		{"brainpool curve", p("PRIVATE KEY", brainpoolDER), "", ErrUnsupported},
		{"PBES1", encryptedVariant(t, encDER, func(i *encryptedPrivateKeyInfo, _ *pbes2Params, _ *pbkdf2Params) {
			i.Algorithm.Algorithm = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
		}), testPassword, ErrUnsupported},
		{"AES-GCM", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.EncryptionScheme.Algorithm = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
		}), testPassword, ErrUnsupported},
		{"IV of 12 bytes", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.EncryptionScheme.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, make([]byte, 12))}
		}), testPassword, ErrMalformed},
		{"ciphertext not whole blocks", encryptedVariant(t, encDER, func(i *encryptedPrivateKeyInfo, _ *pbes2Params, _ *pbkdf2Params) {
			i.EncryptedData = i.EncryptedData[:len(i.EncryptedData)-1]
		}), testPassword, ErrMalformed},
		{"ciphertext empty", encryptedVariant(t, encDER, func(i *encryptedPrivateKeyInfo, _ *pbes2Params, _ *pbkdf2Params) {
			i.EncryptedData = nil
		}), testPassword, ErrMalformed},
		{"a billion iterations", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) {
			k.IterationCount = 1 << 30
		}), testPassword, ErrUnsupported},
		{"zero iterations", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) {
			k.IterationCount = 0
		}), testPassword, ErrUnsupported},
		{"HMAC-SHA512", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) {
			k.PRF.Algorithm = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
		}), testPassword, ErrUnsupported},
		{"explicit key length", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) {
			k.KeyLength = big.NewInt(32)
		}), testPassword, ErrUnsupported},
		{"unknown KDF", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.KeyDerivationFunc.Algorithm = asn1.ObjectIdentifier{1, 2, 3, 4}
		}), testPassword, ErrUnsupported},
		{"flipped ciphertext", encryptedVariant(t, encDER, func(i *encryptedPrivateKeyInfo, _ *pbes2Params, _ *pbkdf2Params) {
			i.EncryptedData[0] ^= 0xff
		}), testPassword, ErrWrongPassword},
		// A structurally bad encrypted key is reported as such even without a password, so that
		// configuring one is not the first thing an operator tries.
		{"unsupported before password", encryptedVariant(t, encDER, func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.EncryptionScheme.Algorithm = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
		}), "", ErrUnsupported},
		{"DER garbage", []byte{0x30, 0x03, 0x02, 0x01, 0x05}, "", ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, err := ParsePEM(tt.data, []byte(tt.password))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if signer != nil {
				t.Error("signer returned together with an error")
			}
			if got := sentinelOf(err); got != tt.want {
				t.Errorf("error also matches %v", got)
			}
		})
	}
}

// TestErrorsDoNotLeak damages key files in many ways and checks that no resulting message holds
// the password (right or wrong) or any piece of the key file.
func TestErrorsDoNotLeak(t *testing.T) {
	ec := testSigner(t, P256).(*ecdsa.PrivateKey)
	rsaKey := testSigner(t, RSA2048).(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := MarshalPEM(ec, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := MarshalPEM(testSigner(t, P384), nil)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"encrypted PKCS#8": encrypted,
		"plain PKCS#8":     plain,
		"legacy SEC1":      legacyPEM(t, "EC PRIVATE KEY", sec1, x509.PEMCipherAES128, testPassword),
		"legacy PKCS#1":    legacyPEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), x509.PEMCipherAES256, testPassword),
		"plain PKCS#1":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}),
	}
	const wrongPassword = "Wr0ng-Passw0rd-9431"
	passwords := [][]byte{nil, []byte(wrongPassword), []byte(testPassword)}

	for name, file := range files {
		block := mustPEM(t, file)
		var secrets []string // pieces that must never appear in a message
		for _, line := range strings.Split(string(file), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") {
				secrets = append(secrets, line)
			}
		}
		for i := 0; i+8 <= len(block.Bytes); i += 8 {
			chunk := block.Bytes[i : i+8]
			secrets = append(secrets, string(chunk), hex.EncodeToString(chunk), strings.ToUpper(hex.EncodeToString(chunk)))
		}
		secrets = append(secrets, testPassword, wrongPassword)

		for vname, variant := range damaged(file) {
			for _, pw := range passwords {
				_, err := ParsePEM(variant, pw)
				if err == nil {
					continue
				}
				if sentinelOf(err) == nil {
					t.Errorf("%s, %s: error wraps no sentinel: %v", name, vname, err)
				}
				msg := err.Error()
				for _, s := range secrets {
					if strings.Contains(msg, s) {
						t.Fatalf("%s, %s: error message contains key material or the password", name, vname)
					}
				}
			}
		}
	}
}

// damaged returns a PEM key file in several broken forms, and intact.
func damaged(file []byte) map[string][]byte {
	lines := strings.Split(string(file), "\n")
	body := -1 // index of the first base64 line
	for i, l := range lines {
		if i > 0 && l != "" && !strings.Contains(l, ":") {
			body = i
			break
		}
	}
	edit := func(f func(ls []string) []string) []byte {
		ls := append([]string(nil), lines...)
		return []byte(strings.Join(f(ls), "\n"))
	}
	flip := func(line []byte, i int) {
		if line[i] == 'A' {
			line[i] = 'B'
		} else {
			line[i] = 'A'
		}
	}
	return map[string][]byte{
		"intact": file,
		"one character changed": edit(func(ls []string) []string {
			b := []byte(ls[body+1])
			flip(b, 10)
			ls[body+1] = string(b)
			return ls
		}),
		"first line changed": edit(func(ls []string) []string {
			b := []byte(ls[body])
			flip(b, 3)
			ls[body] = string(b)
			return ls
		}),
		"line dropped": edit(func(ls []string) []string { return append(ls[:body+1], ls[body+2:]...) }),
		"truncated":    file[:len(file)*2/3],
		"bad base64":   edit(func(ls []string) []string { ls[body] = "%%%" + ls[body][3:]; return ls }),
		"type renamed": bytes.ReplaceAll(file, []byte("PRIVATE KEY-----"), []byte("PRIVATE KEYS-----")),
		"headers removed": edit(func(ls []string) []string {
			out := ls[:1]
			for _, l := range ls[1:] {
				if !strings.Contains(l, ":") {
					out = append(out, l)
				}
			}
			return out
		}),
		"DER only": func() []byte {
			b, _ := pem.Decode(file)
			return b.Bytes
		}(),
	}
}
