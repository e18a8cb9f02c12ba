package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/pem"
	"fmt"

	keyfile "github.com/foxboron/go-tpm-keyfiles"
	"github.com/google/go-tpm/tpm2"

	"github.com/evsesec/evsesec/keys"
)

// tpmKey is a decoded TPM key file with its public key already checked.
type tpmKey struct {
	key *keyfile.TPMKey
	pub crypto.PublicKey
	alg keys.Algorithm
}

// decode reads a "TSS2 PRIVATE KEY" key file. PEM blocks of other types before it are skipped,
// as OpenSSL does. The public key is taken from the pubkey blob and checked (a point on the
// curve, an RSA modulus of a size we use), so no TPM is needed. Errors wrap keys.ErrNoKey,
// keys.ErrMalformed or keys.ErrUnsupported and never contain key bytes.
func decode(data []byte) (*tpmKey, error) {
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != keys.PEMTypeTPM {
			continue
		}
		k, err := parseDER(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d (%s)", err, n, block.Type)
		}
		return k, nil
	}
	if keys.KindOf(data) == keys.KindTPM {
		return nil, fmt.Errorf("%w: a %s PEM block could not be decoded (bad base64 or missing END line)", keys.ErrMalformed, keys.PEMTypeTPM)
	}
	return nil, fmt.Errorf("%w: no %s PEM block", keys.ErrNoKey, keys.PEMTypeTPM)
}

// parseDER decodes the TPMKey ASN.1 structure and its public area.
func parseDER(der []byte) (k *tpmKey, err error) {
	// The keyfile and tpm2 parsers are not hardened against every malformed input; a panic
	// there must become a malformed-key error, never take the store down.
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("%w: TPM key structure", keys.ErrMalformed)
		}
	}()
	key, err := keyfile.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: TPM key structure", keys.ErrMalformed)
	}
	switch {
	case key.Keytype.Equal(keyfile.OIDLoadableKey), key.Keytype.Equal(keyfile.OIDImportableKey):
	case key.Keytype.Equal(keyfile.OIDSealedKey):
		return nil, fmt.Errorf("%w: TPM sealed data, not a key", keys.ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: TPM key type %s", keys.ErrUnsupported, key.Keytype)
	}
	public, err := key.Pubkey.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: TPM public area", keys.ErrMalformed)
	}
	pub, err := publicKey(public)
	if err != nil {
		return nil, err
	}
	alg, err := keys.AlgorithmOf(pub)
	if err != nil {
		return nil, err
	}
	return &tpmKey{key: key, pub: pub, alg: alg}, nil
}

// publicKey converts a TPM public area into a Go public key, checking it.
func publicKey(public *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	switch public.Type {
	case tpm2.TPMAlgECC, tpm2.TPMAlgRSA:
	default:
		return nil, fmt.Errorf("%w: TPM key of algorithm 0x%04x", keys.ErrUnsupported, uint16(public.Type))
	}
	if public.Type == tpm2.TPMAlgECC {
		params, err := public.Parameters.ECCDetail()
		if err != nil {
			return nil, fmt.Errorf("%w: TPM ECC parameters", keys.ErrMalformed)
		}
		if _, err := params.CurveID.Curve(); err != nil {
			return nil, fmt.Errorf("%w: TPM ECC curve 0x%04x", keys.ErrUnsupported, uint16(params.CurveID))
		}
	}
	pub, err := tpm2.Pub(*public)
	if err != nil {
		return nil, fmt.Errorf("%w: TPM public key", keys.ErrMalformed)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		// tpm2.Pub does not check the point; ECDH does.
		if _, err := p.ECDH(); err != nil {
			return nil, fmt.Errorf("%w: TPM ECC point is not on the curve", keys.ErrMalformed)
		}
	case *rsa.PublicKey:
		if p.N.Sign() <= 0 || p.N.Bit(0) == 0 || p.E < 3 || p.E%2 == 0 {
			return nil, fmt.Errorf("%w: TPM RSA public key", keys.ErrMalformed)
		}
	}
	return pub, nil
}

// encode writes a key file. The description field is never set: tpm2-openssl 1.1.1 rejects it.
func encode(key *keyfile.TPMKey) []byte {
	key.Description = ""
	return pem.EncodeToMemory(&pem.Block{Type: keys.PEMTypeTPM, Bytes: keyfile.Marshal(key)})
}

// signingAttributes are the object attributes of the keys we create, the same as OpenSSL's tpm2
// provider gives `genpkey` keys: bound to this TPM and parent, generated inside it, usable with
// an empty authorization, for signing and (as the provider allows ECDH and RSA decryption)
// decryption.
var signingAttributes = tpm2.TPMAObject{
	FixedTPM:            true,
	FixedParent:         true,
	SensitiveDataOrigin: true,
	UserWithAuth:        true,
	SignEncrypt:         true,
	Decrypt:             true,
}

// template returns the public template of a new key of the given algorithm.
func template(alg keys.Algorithm) (tpm2.TPMTPublic, error) {
	var curve tpm2.TPMECCCurve
	var bits tpm2.TPMKeyBits
	switch alg {
	case keys.P256:
		curve = tpm2.TPMECCNistP256
	case keys.P384:
		curve = tpm2.TPMECCNistP384
	case keys.P521:
		curve = tpm2.TPMECCNistP521
	case keys.RSA2048:
		bits = 2048
	case keys.RSA3072:
		bits = 3072
	default:
		return tpm2.TPMTPublic{}, fmt.Errorf("%w: key algorithm %q", keys.ErrUnsupported, string(alg))
	}
	if bits != 0 {
		return tpm2.TPMTPublic{
			Type:             tpm2.TPMAlgRSA,
			NameAlg:          tpm2.TPMAlgSHA256,
			ObjectAttributes: signingAttributes,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
				KeyBits:   bits,
			}),
		}, nil
	}
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: signingAttributes,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
			CurveID:   curve,
			KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
	}, nil
}
