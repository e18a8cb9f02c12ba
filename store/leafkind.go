package store

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// The two SECC leaf types live in one directory pair and one V2G domain; what tells a leaf's
// type is its key algorithm, read from the ISO 15118-20 profile table: a key that profile allows
// (P-521, Ed448) makes a V2G20 leaf, any other key a V2G leaf. So V2G answers exactly what it
// answered before V2G20 existed whenever the store holds no -20 leaves, and never hands a -20
// leaf to an ISO 15118-2 stack.

// dirType is the leaf type whose directories hold leaves of type t.
func (t LeafType) dirType() LeafType {
	if t == LeafV2G20 {
		return LeafV2G
	}
	return t
}

// stationLeaf reports whether the station holds leaves of type t (it only verifies MF and MO).
func stationLeaf(t LeafType) bool { return t == LeafCSMS || t == LeafV2G || t == LeafV2G20 }

// stationLeafTypes are the types a selection is made for, in the order events and listings use.
var stationLeafTypes = []LeafType{LeafV2G, LeafV2G20, LeafCSMS}

// seccTypeOf is the SECC leaf type of c, by its key.
func seccTypeOf(c *x509.Certificate) LeafType {
	if certs.ISO15118_20SECC.Fits(c) {
		return LeafV2G20
	}
	return LeafV2G
}

// typeOf is the leaf type a leaf of the set answers to: the set's type, told by the key in the
// SECC directory.
func (ls *leafSet) typeOf(e *leafEntry) LeafType {
	if ls.lt.dirType() == LeafV2G {
		return seccTypeOf(e.cert)
	}
	return ls.lt
}

// kindLeaves is the leaf set selections of type lt are made from: for V2G and V2G20 the leaves of
// the SECC directory of that type only (the directory's files stay whole, so every chain file's
// sub-CAs still serve as path elements); for CSMS the directory as it is.
func (s *Store) kindLeaves(lt LeafType) *leafSet {
	ls := s.readLeaves(lt)
	if lt.dirType() != LeafV2G {
		return ls
	}
	ls.kindsOnce.Do(func() {
		ls.kinds = map[LeafType]*leafSet{}
		for _, t := range []LeafType{LeafV2G, LeafV2G20} {
			sub := &leafSet{lt: t, certDir: ls.certDir, keyDir: ls.keyDir, files: ls.files, parent: ls}
			for _, e := range ls.entries {
				if ls.typeOf(e) == t {
					sub.entries = append(sub.entries, e)
				}
			}
			ls.kinds[t] = sub
		}
	})
	return ls.kinds[lt]
}

// leafProfile is the certificate profile leaves of type lt must meet to install, if any.
func (s *Store) leafProfile(lt LeafType) (certs.Profile, bool) {
	if s.cfg.SECCLeafProfile == "none" {
		return certs.Profile{}, false
	}
	switch lt {
	case LeafV2G:
		return certs.ISO15118_2SECC, true
	case LeafV2G20:
		return certs.ISO15118_20SECC, true
	}
	return certs.Profile{}, false
}

// errEd448Unsupported is why an Ed448 SECC leaf is refused and an Ed448 CSR not made: Go's
// standard library and golang.org/x/crypto have no Ed448, so its key could neither be read,
// matched to its certificate nor used in a TLS handshake.
var errEd448Unsupported = errors.New("Ed448 keys are not supported: Go's crypto libraries have no Ed448, so the key can be neither made, read nor used for TLS; use P-521")

// checkLeafKind refuses a SECC leaf that would not be found again under lt: a -20 key offered as
// V2G, or a -2 key offered as V2G20. It applies with or without the profile check, because the
// type is told by the key. The reason says which type the leaf is.
func checkLeafKind(leaf *x509.Certificate, lt LeafType) (InstallResult, string) {
	if lt.dirType() != LeafV2G {
		return InstallAccepted, ""
	}
	alg := certs.KeyAlgorithmOf(leaf)
	switch got := seccTypeOf(leaf); {
	case got != lt && lt == LeafV2G:
		return InstallInvalidFormat, fmt.Sprintf("its %s key makes it an ISO 15118-20 leaf: install it as V2G20", alg)
	case got != lt:
		return InstallInvalidFormat, fmt.Sprintf("its %s key makes it an ISO 15118-2 (V2G) leaf; ISO 15118-20 requires %s",
			alg, joinKeyAlgorithms(certs.ISO15118_20SECC.Keys))
	case alg == certs.KeyEd448:
		return InstallInvalidFormat, errEd448Unsupported.Error()
	}
	return InstallAccepted, ""
}

// checkProfile checks leaf against the profile of lt and maps a failure onto the result the
// ISO 15118-2 check always gave: InvalidCommonName for the subject, InvalidFormat otherwise.
func (s *Store) checkProfile(leaf *x509.Certificate, lt LeafType) (InstallResult, string) {
	if res, why := checkLeafKind(leaf, lt); res != InstallAccepted {
		return res, why
	}
	p, ok := s.leafProfile(lt)
	if !ok {
		return InstallAccepted, ""
	}
	err := p.Check(leaf)
	var pe *certs.ProfileError
	if !errors.As(err, &pe) {
		return InstallAccepted, ""
	}
	if pe.Rule == certs.RuleSubject {
		return InstallInvalidCommonName, pe.Error()
	}
	return InstallInvalidFormat, pe.Error()
}

func joinKeyAlgorithms(ks []certs.KeyAlgorithm) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, " or ")
}

// checkSECC20KeyAlgorithm validates secc20_key_algorithm: empty (P-521) or an algorithm the
// ISO 15118-20 profile allows and Go can make.
func checkSECC20KeyAlgorithm(name string) error {
	if name == "" {
		return nil
	}
	if strings.EqualFold(strings.TrimSpace(name), "ed448") {
		return fmt.Errorf("config: secc20_key_algorithm %q: %w", name, errEd448Unsupported)
	}
	alg, err := keys.ParseAlgorithm(name)
	if err != nil || alg != keys.P521 {
		return fmt.Errorf("config: secc20_key_algorithm %q: ISO 15118-20 SECC keys are P-521 (or Ed448, which Go cannot make)", name)
	}
	return nil
}

// csrKeyAlgorithm is the configured key algorithm of lt's CSRs.
func (c Config) csrKeyAlgorithm(lt LeafType) string {
	switch lt {
	case LeafCSMS:
		return c.CSMSKeyAlgorithm
	case LeafV2G20:
		if c.SECC20KeyAlgorithm == "" {
			return string(keys.P521)
		}
		return c.SECC20KeyAlgorithm
	}
	return c.SECCKeyAlgorithm
}

// csrProfile is the profile a CSR of type lt follows for its DC and key usage: the standard's
// table for the SECC types (also with secc_leaf_profile none, since the CA still expects them),
// none for CSMS.
func csrProfile(lt LeafType) (certs.Profile, bool) {
	switch lt {
	case LeafV2G:
		return certs.ISO15118_2SECC, true
	case LeafV2G20:
		return certs.ISO15118_20SECC, true
	}
	return certs.Profile{}, false
}

// keyUsageBits encodes ku as the DER BIT STRING of the keyUsage extension (bit 0 first, trailing
// zero bits cut, as DER requires).
func keyUsageBits(ku x509.KeyUsage) asn1.BitString {
	var b [2]byte
	n := 0
	for i := 0; i < 9; i++ {
		if ku&(1<<i) != 0 {
			b[i/8] |= 0x80 >> (i % 8)
			n = i + 1
		}
	}
	return asn1.BitString{Bytes: b[:(n+7)/8], BitLength: n}
}
