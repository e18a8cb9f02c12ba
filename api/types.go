// Package api is the evse_security interface as data: Go types for every type of the interface's
// types YAML, with the exact JSON names and enum strings, and the Dispatcher that maps a command
// name and its JSON arguments onto the store and returns the JSON result.
//
// Transports (the EVerest module wire, the standalone MQTT service, `evsesec call`) all go through
// one Dispatcher, so they cannot disagree. Around it: the interface's history (iface.go: what
// each everest-core release's callers send and expect), the one mapping of store events onto the
// certificate_store_update variable (StoreUpdateFor), and the mapping of an EVerest module config
// onto the store's config (StoreConfig). api imports store and certs; it knows no transport.
package api

import (
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// The enums of types-evse_security.yaml. The store defines them (it returns them); they are
// named here as the interface names them.
type (
	// EncodingFormat is DER or PEM.
	EncodingFormat = store.EncodingFormat
	// CaCertificateType is V2G, MO, CSMS or MF.
	CaCertificateType = store.CAType
	// LeafCertificateType is CSMS, V2G, MF or MO.
	LeafCertificateType = store.LeafType
	// CertificateType is a root type per domain or V2GCertificateChain.
	CertificateType = store.CertificateType
	// HashAlgorithm is SHA256, SHA384 or SHA512.
	HashAlgorithm = certs.HashAlgorithm
	// InstallCertificateResult is the result of install_ca_certificate and update_leaf_certificate.
	InstallCertificateResult = store.InstallResult
	// CertificateValidationResult is the result of verify_certificate.
	CertificateValidationResult = store.ValidationResult
	// DeleteCertificateResult is the result of delete_certificate.
	DeleteCertificateResult = store.DeleteResult
	// GetInstalledCertificatesStatus is the status of get_installed_certificates.
	GetInstalledCertificatesStatus = store.InstalledStatus
	// GetCertificateSignRequestStatus is the status of generate_certificate_signing_request.
	GetCertificateSignRequestStatus = store.CSRStatus
	// GetCertificateInfoStatus is the status of the leaf info queries.
	GetCertificateInfoStatus = store.InfoStatus
	// CertificateStoreUpdateOperation is Installed or Deleted.
	CertificateStoreUpdateOperation = store.UpdateOperation
)

// The object types of types-evse_security.yaml.
type (
	// CertificateHashData names a certificate by issuer name hash, issuer key hash and serial.
	CertificateHashData = certs.HashData
	// CertificateHashDataChain is a certificate's hash data with its children's.
	CertificateHashDataChain = store.HashDataChain
	// GetInstalledCertificatesResult is the result of get_installed_certificates.
	GetInstalledCertificatesResult = store.InstalledCertificates
)

// CertificateStoreUpdate is the payload of the certificate_store_update variable. Exactly one of
// the two types is present.
type CertificateStoreUpdate struct {
	Operation           CertificateStoreUpdateOperation `json:"operation"`
	LeafCertificateType LeafCertificateType             `json:"leaf_certificate_type,omitempty"`
	CaCertificateType   CaCertificateType               `json:"ca_certificate_type,omitempty"`
}

// StoreUpdateFor is the one mapping of store events onto the certificate_store_update variable:
// the payload to publish for event e, and whether e is published at all. Only events with an
// operation are (install, delete, and the store's own events the interface can express).
func StoreUpdateFor(e store.Event) (CertificateStoreUpdate, bool) {
	if e.Operation == "" {
		return CertificateStoreUpdate{}, false
	}
	return StoreUpdateOf(e), true
}

// StoreUpdateOf converts a store event into the variable's payload.
func StoreUpdateOf(e store.Event) CertificateStoreUpdate {
	return CertificateStoreUpdate{Operation: e.Operation, LeafCertificateType: e.LeafType, CaCertificateType: e.CAType}
}
