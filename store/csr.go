package store

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
)

// ErrNoTPM is reported (as KeyGenError) when a CSR asks for a TPM key and no TPM is configured;
// the reference silently made a software key instead.
var ErrNoTPM = errors.New("use_tpm requested but no TPM is configured")

// CSRResult is the interface's GetCertificateSignRequestResult.
type CSRResult struct {
	Status CSRStatus `json:"status"`
	CSR    string    `json:"csr,omitempty"`
}

// pendingKeys are the keys of CSRs whose certificate has not arrived yet, with the time each was
// made (or, after a restart, first seen without a certificate). They survive a restart because
// garbage collection adopts every key that no certificate matches.
type pendingKeys struct {
	mu    sync.Mutex
	since map[string]time.Time
}

func (p *pendingKeys) add(path string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.since == nil {
		p.since = map[string]time.Time{}
	}
	if _, ok := p.since[path]; !ok {
		p.since[path] = t
	}
}

func (p *pendingKeys) remove(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.since, path)
}

func (p *pendingKeys) get(path string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.since[path]
	return t, ok
}

// PendingCSRKeys returns the paths of the keys waiting for their certificate.
func (s *Store) PendingCSRKeys() []string {
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	out := make([]string, 0, len(s.pending.since))
	for p := range s.pending.since {
		out = append(out, p)
	}
	return out
}

func (s *Store) fulfilPending(path string) { s.pending.remove(path) }
func (s *Store) forgetPending(path string) { s.pending.remove(path) }

// maxSubjectField is the upper bound of O and CN (RFC 5280's ub-organization-name and
// ub-common-name).
const maxSubjectField = 64

// GenerateCSR makes a key for a leaf of type lt and returns a PKCS#10 CSR signed with it. The
// subject is C (PrintableString), O and CN (UTF8String) and, for the SECC types, the DC of the
// type's profile (IA5String): DC=CPO for V2G (ISO 15118-2), DC=CSO for V2G20 (ISO 15118-20, whose
// key usage is digitalSignature alone); the key algorithm is the one configured for the type
// (secc20_key_algorithm, P-521, for V2G20; Go cannot make Ed448 keys, so that setting is refused
// at Open and, should it get here, answered KeyGenError); the config's DNS names and IP
// addresses go into subjectAltName. Bad input is rejected, never silently dropped:
// InvalidRequestedType for MF and MO; GenerationError for a country that is not two letters, an
// empty or over-long organization or common name; KeyGenError when use_tpm is asked without a TPM
// or the key cannot be made or written. The key is written 0600 (encrypted when a password is
// configured) and stays pending until its certificate arrives, CSRExpiry passes, or the CSR is
// reported failed.
func (s *Store) GenerateCSR(lt LeafType, country, organization, common string, useTPM bool) CSRResult {
	if !stationLeaf(lt) {
		s.log.Warn("generate_certificate_signing_request rejected: no CSRs for this type", "type", lt)
		return CSRResult{Status: CSRInvalidRequestedType}
	}
	if err := checkSubjectInput(country, organization, common); err != nil {
		s.log.Warn("generate_certificate_signing_request rejected", "type", lt, "err", err)
		return CSRResult{Status: CSRGenerationError}
	}
	kind := s.cfg.backendFor(lt)
	if useTPM {
		kind = keys.KindTPM
	}
	algName := s.cfg.csrKeyAlgorithm(lt)
	if err := checkSECC20KeyAlgorithm(algName); lt == LeafV2G20 && err != nil {
		s.log.Error("generate_certificate_signing_request: no key for an ISO 15118-20 CSR", "type", lt, "err", err)
		return CSRResult{Status: CSRKeyGenError}
	}
	alg, err := keys.ParseAlgorithm(algName)
	if err != nil {
		s.log.Error("generate_certificate_signing_request: bad key algorithm in config", "type", lt, "err", err)
		return CSRResult{Status: CSRKeyGenError}
	}
	unlock, err := s.lock.lock()
	if err != nil {
		s.log.Error("generate_certificate_signing_request: cannot lock the store", "err", err)
		return CSRResult{Status: CSRKeyGenError}
	}
	defer unlock()
	keyFile, signer, err := s.keyBackends.create(kind, alg)
	if err != nil {
		s.log.Error("generate_certificate_signing_request: key generation failed", "backend", kind, "err", err)
		return CSRResult{Status: CSRKeyGenError}
	}
	tmpl, err := s.csrTemplate(lt, country, organization, common, alg)
	if err != nil {
		s.log.Warn("generate_certificate_signing_request rejected", "err", err)
		return CSRResult{Status: CSRGenerationError}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		s.log.Error("generate_certificate_signing_request: signing the CSR failed", "err", err)
		return CSRResult{Status: CSRGenerationError}
	}
	_, keyDir, _ := s.cfg.LeafDirs(lt)
	keyPath := filepath.Join(keyDir, leafPrefix(lt)+s.newFileID()+keyFileExt(kind))
	if err := writeAtomic(s.fs, keyPath, keyFile, 0o600, 0o700); err != nil {
		s.log.Error("generate_certificate_signing_request: writing the key failed", "err", err)
		return CSRResult{Status: CSRKeyGenError}
	}
	s.pending.add(keyPath, s.now())
	s.log.Info("generated CSR", "type", lt, "key", keyPath, "algorithm", alg)
	return CSRResult{Status: CSRAccepted, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}
}

// checkSubjectInput validates the CSR subject fields.
func checkSubjectInput(country, organization, common string) error {
	if len(country) != 2 || !isUpperOrLowerASCII(country) {
		return fmt.Errorf("country %q must be two letters (ISO 3166)", country)
	}
	for name, v := range map[string]string{"organization": organization, "common name": common} {
		n := utf8.RuneCountInString(v)
		switch {
		case !utf8.ValidString(v):
			return fmt.Errorf("%s is not valid UTF-8", name)
		case n == 0:
			return fmt.Errorf("%s is empty", name)
		case n > maxSubjectField:
			return fmt.Errorf("%s has %d characters, at most %d allowed", name, n, maxSubjectField)
		}
		for _, r := range v {
			if r == 0 {
				return fmt.Errorf("%s contains a NUL character", name)
			}
		}
	}
	return nil
}

func isUpperOrLowerASCII(s string) bool {
	for _, r := range s {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z') {
			return false
		}
	}
	return true
}

var (
	oidCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidBasicConstr  = asn1.ObjectIdentifier{2, 5, 29, 19}
)

type rawAttribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// csrTemplate builds the request: the subject by hand, because pkix.Name cannot express DC and
// would encode O and CN as PrintableString.
func (s *Store) csrTemplate(lt LeafType, country, organization, common string, alg keys.Algorithm) (*x509.CertificateRequest, error) {
	attr := func(oid asn1.ObjectIdentifier, tag int, v string) []rawAttribute {
		return []rawAttribute{{oid, asn1.RawValue{Tag: tag, Bytes: []byte(v)}}}
	}
	rdns := [][]rawAttribute{
		attr(oidCountry, asn1.TagPrintableString, country),
		attr(oidOrganization, asn1.TagUTF8String, organization),
		attr(oidCommonName, asn1.TagUTF8String, common),
	}
	if p, ok := csrProfile(lt); ok && len(p.DomainComponents) > 0 {
		rdns = append(rdns, attr(oidDomainComponent, asn1.TagIA5String, p.DomainComponents[0]))
	}
	var name []rdnSET
	for _, r := range rdns {
		name = append(name, rdnSET(r))
	}
	rawSubject, err := asn1.Marshal(name)
	if err != nil {
		return nil, err
	}
	// digitalSignature|keyAgreement for EC keys (ECDH in ISO 15118 and TLS 1.2 ECDHE_ECDSA);
	// digitalSignature|keyEncipherment for RSA keys, which cannot do key agreement.
	ku := asn1.BitString{Bytes: []byte{0x88}, BitLength: 5} // bits 0 and 4
	if alg == keys.RSA2048 || alg == keys.RSA3072 {
		ku = asn1.BitString{Bytes: []byte{0xa0}, BitLength: 3} // bits 0 and 2
	}
	if lt == LeafV2G20 {
		// The -20 profile's key usage: TLS 1.3 agrees keys ephemerally, the leaf only signs.
		ku = keyUsageBits(certs.ISO15118_20SECC.KeyUsage)
	}
	kuDER, err := asn1.Marshal(ku)
	if err != nil {
		return nil, err
	}
	bcDER, err := asn1.Marshal(struct{}{}) // empty SEQUENCE: CA:FALSE
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		RawSubject:         rawSubject,
		SignatureAlgorithm: alg.SignatureAlgorithm(),
		DNSNames:           s.cfg.CSRDNSNames,
		ExtraExtensions: []pkix.Extension{
			{Id: oidKeyUsage, Value: kuDER},
			{Id: oidBasicConstr, Critical: true, Value: bcDER},
		},
	}
	for _, ip := range s.cfg.CSRIPAddresses {
		p := net.ParseIP(ip)
		if p == nil {
			return nil, fmt.Errorf("config csr_ip_addresses: %q is not an IP address", ip)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, p)
	}
	return tmpl, nil
}

// rdnSET is one RDN for marshalling (a SET OF AttributeTypeAndValue).
type rdnSET []rawAttribute

// CertificateSigningRequestFailed drops the key of a CSR the backend will not answer (the
// reference left it until expiry). The key is the one in lt's key directory whose public key is
// the CSR's; it is removed when no certificate of the store uses it, whether or not it is still
// on the pending list (after a restart the list is empty until garbage collection adopts the
// key). It reports whether a key was removed.
func (s *Store) CertificateSigningRequestFailed(csrPEM string, lt LeafType) bool {
	if s.tooLarge("certificate_signing_request_failed", csrPEM) {
		return false
	}
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil {
		return false
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return false
	}
	_, keyDir, ok := s.cfg.LeafDirs(lt)
	if !ok {
		return false
	}
	unlock, err := s.lock.lock()
	if err != nil {
		return false
	}
	defer unlock()
	fp := keys.Fingerprint(csr.PublicKey)
	if fp == "" {
		return false
	}
	for _, k := range s.listKeys(keyDir) {
		if k.err != nil || k.fp != fp {
			continue
		}
		inUse := s.certificateKeys(s.readCAs(), []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)})
		if inUse[fp] {
			s.log.Warn("certificate_signing_request_failed: the key is kept, a certificate uses it", "key", k.path)
			return false
		}
		if err := s.removeKeyFile(k.path); err != nil {
			s.log.Error("certificate_signing_request_failed: cannot remove key", "key", k.path, "err", err)
			return false
		}
		s.pending.remove(k.path)
		s.log.Info("removed the key of a failed CSR", "key", k.path)
		return true
	}
	return false
}
