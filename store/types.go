package store

// CAType names a trust domain. The values are the interface's CaCertificateType strings.
type CAType string

// The four trust domains, in the order the reference walks them (its std::map order), which
// decides which domain a shared bundle file is reported under.
const (
	CAV2G  CAType = "V2G"
	CAMO   CAType = "MO"
	CACSMS CAType = "CSMS"
	CAMF   CAType = "MF"
)

// CATypes lists the domains in walk order.
var CATypes = []CAType{CAV2G, CAMO, CACSMS, CAMF}

// Valid reports whether t is one of the four domains.
func (t CAType) Valid() bool { return t == CAV2G || t == CAMO || t == CACSMS || t == CAMF }

// LeafType names a kind of leaf certificate. The values are the interface's LeafCertificateType
// strings. The station holds leaves of the CSMS type (its OCPP client certificate) and the V2G
// type (its ISO 15118-2 SECC server certificate), and, as an evsesec extension of the interface,
// of the V2G20 type (its ISO 15118-20 SECC server certificate); MF and MO leaves are only ever
// verified.
type LeafType string

// The leaf types of the interface.
const (
	LeafCSMS LeafType = "CSMS"
	LeafV2G  LeafType = "V2G"
	LeafMF   LeafType = "MF"
	LeafMO   LeafType = "MO"
	// LeafV2G20 is the ISO 15118-20 SECC leaf (the name EVerest#2683 proposes; not yet in the
	// upstream interface). It shares the SECC directories and the V2G domain with LeafV2G; the
	// leaf's key algorithm tells the two apart (P-521 or Ed448: V2G20; anything else: V2G).
	LeafV2G20 LeafType = "V2G20"
)

// Valid reports whether t is one of the leaf types (the interface's four and V2G20).
func (t LeafType) Valid() bool {
	return t == LeafCSMS || t == LeafV2G || t == LeafMF || t == LeafMO || t == LeafV2G20
}

// Domain is the trust domain a leaf of type t is verified against.
func (t LeafType) Domain() CAType {
	switch t {
	case LeafCSMS:
		return CACSMS
	case LeafV2G, LeafV2G20:
		return CAV2G
	case LeafMF:
		return CAMF
	default:
		return CAMO
	}
}

// CertificateType is the interface's CertificateType: a root type per domain, or the station's
// V2G certificate chains.
type CertificateType string

// The certificate types of get_installed_certificates.
const (
	V2GRootCertificate  CertificateType = "V2GRootCertificate"
	MORootCertificate   CertificateType = "MORootCertificate"
	CSMSRootCertificate CertificateType = "CSMSRootCertificate"
	V2GCertificateChain CertificateType = "V2GCertificateChain"
	MFRootCertificate   CertificateType = "MFRootCertificate"
)

// Valid reports whether t is one of the five types.
func (t CertificateType) Valid() bool {
	switch t {
	case V2GRootCertificate, MORootCertificate, CSMSRootCertificate, V2GCertificateChain, MFRootCertificate:
		return true
	}
	return false
}

// Domain returns the CA domain of a root type; ok is false for V2GCertificateChain.
func (t CertificateType) Domain() (CAType, bool) {
	switch t {
	case V2GRootCertificate:
		return CAV2G, true
	case MORootCertificate:
		return CAMO, true
	case CSMSRootCertificate:
		return CACSMS, true
	case MFRootCertificate:
		return CAMF, true
	}
	return "", false
}

// RootType is the CertificateType of a domain's roots.
func (t CAType) RootType() CertificateType {
	switch t {
	case CAV2G:
		return V2GRootCertificate
	case CAMO:
		return MORootCertificate
	case CACSMS:
		return CSMSRootCertificate
	default:
		return MFRootCertificate
	}
}

// InstallResult is the interface's InstallCertificateResult.
type InstallResult string

// The results of install_ca_certificate and update_leaf_certificate.
const (
	InstallInvalidSignature        InstallResult = "InvalidSignature"
	InstallInvalidCertificateChain InstallResult = "InvalidCertificateChain"
	InstallInvalidFormat           InstallResult = "InvalidFormat"
	InstallInvalidCommonName       InstallResult = "InvalidCommonName"
	InstallNoRootCertificate       InstallResult = "NoRootCertificateInstalled"
	InstallExpired                 InstallResult = "Expired"
	InstallStoreFull               InstallResult = "CertificateStoreMaxLengthExceeded"
	InstallWriteError              InstallResult = "WriteError"
	InstallAccepted                InstallResult = "Accepted"
)

// ValidationResult is the interface's CertificateValidationResult.
type ValidationResult string

// The results of verify_certificate.
const (
	ValidationValid                ValidationResult = "Valid"
	ValidationExpired              ValidationResult = "Expired"
	ValidationInvalidSignature     ValidationResult = "InvalidSignature"
	ValidationIssuerNotFound       ValidationResult = "IssuerNotFound"
	ValidationInvalidLeafSignature ValidationResult = "InvalidLeafSignature"
	ValidationInvalidChain         ValidationResult = "InvalidChain"
	ValidationUnknown              ValidationResult = "Unknown"
)

// DeleteResult is the interface's DeleteCertificateResult.
type DeleteResult string

// The results of delete_certificate.
const (
	DeleteAccepted DeleteResult = "Accepted"
	DeleteFailed   DeleteResult = "Failed"
	DeleteNotFound DeleteResult = "NotFound"
)

// InstalledStatus is the interface's GetInstalledCertificatesStatus.
type InstalledStatus string

// The statuses of get_installed_certificates.
const (
	InstalledAccepted InstalledStatus = "Accepted"
	InstalledNotFound InstalledStatus = "NotFound"
)

// InfoStatus is the interface's GetCertificateInfoStatus.
type InfoStatus string

// The statuses of the leaf info queries.
const (
	InfoAccepted           InfoStatus = "Accepted"
	InfoRejected           InfoStatus = "Rejected"
	InfoNotFound           InfoStatus = "NotFound"
	InfoNotFoundValid      InfoStatus = "NotFoundValid"
	InfoPrivateKeyNotFound InfoStatus = "PrivateKeyNotFound"
)

// CSRStatus is the interface's GetCertificateSignRequestStatus.
type CSRStatus string

// The statuses of generate_certificate_signing_request.
const (
	CSRAccepted             CSRStatus = "Accepted"
	CSRInvalidRequestedType CSRStatus = "InvalidRequestedType"
	CSRKeyGenError          CSRStatus = "KeyGenError"
	CSRGenerationError      CSRStatus = "GenerationError"
)

// EncodingFormat is the interface's EncodingFormat.
type EncodingFormat string

// The encodings of leaf files.
const (
	EncodingDER EncodingFormat = "DER"
	EncodingPEM EncodingFormat = "PEM"
)

// Valid reports whether e is DER or PEM.
func (e EncodingFormat) Valid() bool { return e == EncodingDER || e == EncodingPEM }

// UpdateOperation is the interface's CertificateStoreUpdateOperation.
type UpdateOperation string

// The operations of certificate_store_update.
const (
	OperationInstalled UpdateOperation = "Installed"
	OperationDeleted   UpdateOperation = "Deleted"
)
