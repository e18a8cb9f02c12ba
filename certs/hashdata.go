package certs

// HashAlgorithm names the digest of an OCPP CertificateHashData. The values are the interface's
// enum strings.
type HashAlgorithm string

// The digests OCPP allows for CertificateHashData.
const (
	SHA256 HashAlgorithm = "SHA256"
	SHA384 HashAlgorithm = "SHA384"
	SHA512 HashAlgorithm = "SHA512"
)

// HashData is OCPP's CertificateHashData: it names a certificate by the hash of its issuer's
// name, the hash of its issuer's public key and its serial number.
type HashData struct {
	Algorithm      HashAlgorithm `json:"hash_algorithm"`
	IssuerNameHash string        `json:"issuer_name_hash"`
	IssuerKeyHash  string        `json:"issuer_key_hash"`
	SerialNumber   string        `json:"serial_number"`
}
