package store

import (
	"github.com/evsesec/evsesec/certs"
)

// VerifyFileSignature checks a firmware file's signature: signatureB64 is the base64 signature
// over the file's SHA-256 by the key of signingCertPEM (RSA PKCS#1 v1.5 or PSS, or ECDSA). The
// file is streamed, so its size does not matter. With verify_firmware_signer on in the config,
// the signing certificate must also verify against the MF domain, as OCPP's signed firmware
// update requires. Any failure is false, with the reason logged.
func (s *Store) VerifyFileSignature(path, signingCertPEM, signatureB64 string) bool {
	if s.tooLarge("verify_file_signature", signingCertPEM, signatureB64) {
		return false
	}
	sig, err := certs.DecodeBase64(signatureB64)
	if err != nil {
		s.log.Warn("verify_file_signature: signature is not base64", "err", err)
		return false
	}
	cs, err := certs.ParseCertificates([]byte(signingCertPEM))
	if err != nil || len(cs) == 0 {
		s.log.Warn("verify_file_signature: no signing certificate", "err", err)
		return false
	}
	if s.cfg.VerifyFirmwareSigner {
		if r := s.VerifyCertificate(signingCertPEM, []LeafType{LeafMF}); r != ValidationValid {
			s.log.Warn("verify_file_signature: signing certificate does not verify against the MF domain", "result", r)
			return false
		}
	}
	digest, err := certs.FileSHA256(path)
	if err != nil {
		s.log.Warn("verify_file_signature: cannot read the file", "path", path, "err", err)
		return false
	}
	if err := certs.VerifyDigestSignature(cs[0], digest, sig); err != nil {
		s.log.Warn("verify_file_signature: signature check failed", "path", path, "signer", describe(cs[0]), "err", err)
		return false
	}
	s.log.Info("verify_file_signature: signature verified", "path", path, "signer", describe(cs[0]))
	return true
}

// VerifyFirmwareSigner verifies a firmware signing certificate (with any intermediates after it)
// against the MF domain.
func (s *Store) VerifyFirmwareSigner(chainPEM string) ValidationResult {
	return s.VerifyCertificate(chainPEM, []LeafType{LeafMF})
}
