package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/evsesec/evsesec/keys"
)

// Config is the store's configuration. The first nine keys are the EvseSecurity module manifest's
// config keys with the manifest's defaults; relative paths are resolved under CertsRoot, absolute
// ones are used as they are (the module's path prefixing). The remaining keys are evsesec's own.
type Config struct {
	// CertsRoot is the directory relative paths are resolved under (EVerest: <prefix>/etc/everest/certs).
	CertsRoot string `yaml:"certs_root"`

	CSMSCABundle       string `yaml:"csms_ca_bundle"`
	MFCABundle         string `yaml:"mf_ca_bundle"`
	MOCABundle         string `yaml:"mo_ca_bundle"`
	V2GCABundle        string `yaml:"v2g_ca_bundle"`
	CSMSLeafCertDir    string `yaml:"csms_leaf_cert_directory"`
	CSMSLeafKeyDir     string `yaml:"csms_leaf_key_directory"`
	SECCLeafCertDir    string `yaml:"secc_leaf_cert_directory"`
	SECCLeafKeyDir     string `yaml:"secc_leaf_key_directory"`
	PrivateKeyPassword string `yaml:"private_key_password"`

	// MaxStoreBytes and MaxStoreEntries bound the files of the store (both are enforced; the
	// reference only enforced the entry count).
	MaxStoreBytes   int64 `yaml:"max_fs_usage_bytes"`
	MaxStoreEntries int   `yaml:"max_fs_certificate_store_entries"`
	// CSRExpiry is how long the key of an unanswered CSR is kept.
	CSRExpiry Duration `yaml:"csr_expiry"`
	// GCInterval is the period of the garbage collection timer.
	GCInterval Duration `yaml:"garbage_collect_time"`
	// MinKeptLeaves is how many of the newest leaves per type garbage collection always keeps.
	MinKeptLeaves int `yaml:"min_kept_leaves"`

	// CSMSKeyAlgorithm and SECCKeyAlgorithm choose the key of new CSRs ("P-256", "P-384",
	// "P-521", "RSA-2048", "RSA-3072").
	CSMSKeyAlgorithm string `yaml:"csms_key_algorithm"`
	SECCKeyAlgorithm string `yaml:"secc_key_algorithm"`
	// SECC20KeyAlgorithm chooses the key of new V2G20 (ISO 15118-20) CSRs: "P-521" (the default
	// and the only one Go can make; Ed448 is refused with the reason).
	SECC20KeyAlgorithm string `yaml:"secc20_key_algorithm"`
	// CSRDNSNames and CSRIPAddresses are put into the subjectAltName of every CSR.
	CSRDNSNames    []string `yaml:"csr_dns_names"`
	CSRIPAddresses []string `yaml:"csr_ip_addresses"`

	// CSMSKeyBackend and SECCKeyBackend choose where new CSR keys are made: "file" (default),
	// "tpm" or "pkcs11". use_tpm=true in a CSR request always means the TPM.
	CSMSKeyBackend string `yaml:"csms_key_backend"`
	SECCKeyBackend string `yaml:"secc_key_backend"`
	// TPMDevice is the TPM character device (default /dev/tpmrm0, used when it exists);
	// TPMAddress a TPM simulator socket instead ("tcp://127.0.0.1:2321", "unix:///path",
	// "swtpm:host=...,port=..."). TPMParentHandle is "owner" (default) or a persistent handle
	// (0x81000001); TPMOwnerAuth its authorization value, if any.
	TPMDevice       string `yaml:"tpm_device"`
	TPMAddress      string `yaml:"tpm_address"`
	TPMParentHandle string `yaml:"tpm_parent_handle"`
	TPMOwnerAuth    string `yaml:"tpm_owner_auth"`
	// PKCS11Module, PKCS11Token and PKCS11PIN reach a PKCS#11 token (a binary built with the
	// pkcs11 tag). Keys in it are named by pkcs11: URIs stored in the key files.
	PKCS11Module string `yaml:"pkcs11_module"`
	PKCS11Token  string `yaml:"pkcs11_token"`
	PKCS11PIN    string `yaml:"pkcs11_pin"`

	// VerifyFirmwareSigner makes verify_file_signature also require the signing certificate to
	// verify against the MF domain (off by default: the interface's command never did).
	VerifyFirmwareSigner bool `yaml:"verify_firmware_signer"`

	// SECCLeafProfile is the certificate profile V2G leaves must meet to install: "iso15118-2"
	// (DC=CPO, key usage, P-256; the default) or "none".
	SECCLeafProfile string `yaml:"secc_leaf_profile"`

	// SECCLeafCertLink, SECCLeafKeyLink and CPOCertChainLink are optional symlinks kept pointing
	// at the current SECC leaf, its key and its chain.
	SECCLeafCertLink string `yaml:"secc_leaf_cert_link"`
	SECCLeafKeyLink  string `yaml:"secc_leaf_key_link"`
	CPOCertChainLink string `yaml:"cpo_cert_chain_link"`

	// ExpiryWarningDays and ExpiryCriticalDays are the two expiry thresholds: the maintenance
	// loop logs a warning once per threshold for each certificate the station depends on (a leaf
	// in use and the CAs of its chain), `evsesec doctor` reports them and `evsesec check` turns
	// them into warning and critical. Zero means the default (30 and 7 days).
	ExpiryWarningDays  int `yaml:"expiry_warning_days"`
	ExpiryCriticalDays int `yaml:"expiry_critical_days"`
	// SECCIDs are the ISO15118SeccId values of the station's EVSEs (OCPP 2.0.1), one per EVSE.
	// Only `evsesec doctor` reads them, to say which EVSE has no SECC leaf of its own and which
	// share one; selection by SECC-ID is asked for per call (LeafQuery).
	SECCIDs []string `yaml:"secc_ids"`
}

// The defaults of the reference (libevse-security's constructor and the module manifest).
const (
	DefaultMaxStoreBytes   = 50 * 1024 * 1024
	DefaultMaxStoreEntries = 2000
	DefaultCSRExpiry       = 60 * time.Minute
	DefaultGCInterval      = 20 * time.Minute
	DefaultMinKeptLeaves   = 10
	// DefaultExpiryWarningDays and DefaultExpiryCriticalDays are evsesec's own defaults of the
	// expiry thresholds (the reference had none).
	DefaultExpiryWarningDays  = 30
	DefaultExpiryCriticalDays = 7
)

// DefaultConfig returns the manifest's defaults with root as CertsRoot: the EVerest default layout
// under root.
func DefaultConfig(root string) Config {
	return Config{
		CertsRoot:        root,
		CSMSCABundle:     "ca/csms/CSMS_ROOT_CA.pem",
		MFCABundle:       "ca/mf/MF_ROOT_CA.pem",
		MOCABundle:       "ca/mo/MO_ROOT_CA.pem",
		V2GCABundle:      "ca/v2g/V2G_ROOT_CA.pem",
		CSMSLeafCertDir:  "client/csms",
		CSMSLeafKeyDir:   "client/csms",
		SECCLeafCertDir:  "client/cso",
		SECCLeafKeyDir:   "client/cso",
		MaxStoreBytes:    DefaultMaxStoreBytes,
		MaxStoreEntries:  DefaultMaxStoreEntries,
		CSRExpiry:        Duration(DefaultCSRExpiry),
		GCInterval:       Duration(DefaultGCInterval),
		MinKeptLeaves:    DefaultMinKeptLeaves,
		CSMSKeyAlgorithm: "P-256",
		SECCKeyAlgorithm: "P-256",
		SECCLeafProfile:  "iso15118-2",

		ExpiryWarningDays:  DefaultExpiryWarningDays,
		ExpiryCriticalDays: DefaultExpiryCriticalDays,
		// SECC20KeyAlgorithm is left empty, meaning P-521, so a config written out from the
		// defaults reads as before.
	}
}

// ExpiryThresholds returns the warning and critical expiry thresholds, the defaults where the
// config leaves them zero.
func (c Config) ExpiryThresholds() (warning, critical time.Duration) {
	w, k := c.ExpiryWarningDays, c.ExpiryCriticalDays
	if w == 0 {
		w = DefaultExpiryWarningDays
	}
	if k == 0 {
		k = DefaultExpiryCriticalDays
	}
	return time.Duration(w) * 24 * time.Hour, time.Duration(k) * 24 * time.Hour
}

// LoadConfigFile reads a YAML config. Keys left out keep the defaults; an unknown key is an
// error (a typo must not silently fall back to a default path). A relative certs_root is taken
// relative to the config file's directory; without certs_root the file's directory is the root.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	dir := filepath.Dir(path)
	cfg := DefaultConfig("")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	switch {
	case cfg.CertsRoot == "":
		cfg.CertsRoot = dir
	case !filepath.IsAbs(cfg.CertsRoot):
		cfg.CertsRoot = filepath.Join(dir, cfg.CertsRoot)
	}
	return cfg, nil
}

// Resolve returns p made absolute under the certs root (EVerest's `etc/everest/certs / p`,
// where an absolute p replaces the prefix).
func (c Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.CertsRoot, p)
}

// CABundlePath is the resolved bundle path of domain t.
func (c Config) CABundlePath(t CAType) string {
	switch t {
	case CAV2G:
		return c.Resolve(c.V2GCABundle)
	case CAMO:
		return c.Resolve(c.MOCABundle)
	case CACSMS:
		return c.Resolve(c.CSMSCABundle)
	default:
		return c.Resolve(c.MFCABundle)
	}
}

// LeafDirs returns the resolved certificate and key directories of a station leaf type; ok is
// false for MF and MO, which the station never holds.
func (c Config) LeafDirs(t LeafType) (certDir, keyDir string, ok bool) {
	switch t {
	case LeafCSMS:
		return c.Resolve(c.CSMSLeafCertDir), c.Resolve(c.CSMSLeafKeyDir), true
	case LeafV2G, LeafV2G20:
		return c.Resolve(c.SECCLeafCertDir), c.Resolve(c.SECCLeafKeyDir), true
	}
	return "", "", false
}

// Validate checks the config for mistakes that would make the store unsafe: a leaf directory
// equal to a CA bundle path, empty paths, negative limits.
func (c Config) Validate() error {
	if c.CertsRoot == "" {
		return errors.New("config: certs_root is empty")
	}
	named := map[string]string{
		"csms_ca_bundle": c.CSMSCABundle, "mf_ca_bundle": c.MFCABundle, "mo_ca_bundle": c.MOCABundle,
		"v2g_ca_bundle": c.V2GCABundle, "csms_leaf_cert_directory": c.CSMSLeafCertDir,
		"csms_leaf_key_directory": c.CSMSLeafKeyDir, "secc_leaf_cert_directory": c.SECCLeafCertDir,
		"secc_leaf_key_directory": c.SECCLeafKeyDir,
	}
	for k, v := range named {
		if v == "" {
			return fmt.Errorf("config: %s is empty", k)
		}
	}
	for _, t := range CATypes {
		bp := filepath.Clean(c.CABundlePath(t))
		for _, lt := range []LeafType{LeafCSMS, LeafV2G} {
			cd, kd, _ := c.LeafDirs(lt)
			if bp == filepath.Clean(cd) || bp == filepath.Clean(kd) {
				return fmt.Errorf("config: the %s CA bundle %s is also a %s leaf directory", t, bp, lt)
			}
		}
	}
	if c.SECCLeafProfile != "iso15118-2" && c.SECCLeafProfile != "none" {
		return fmt.Errorf("config: secc_leaf_profile %q: want iso15118-2 or none", c.SECCLeafProfile)
	}
	for name, v := range map[string]string{"csms_key_algorithm": c.CSMSKeyAlgorithm, "secc_key_algorithm": c.SECCKeyAlgorithm} {
		if v == "" {
			continue
		}
		if _, err := keys.ParseAlgorithm(v); err != nil {
			return fmt.Errorf("config: %s %q: want one of %v", name, v, keys.Algorithms())
		}
	}
	// The ISO 15118-2 profile only admits P-256 SECC keys: any other CSR key would yield a
	// certificate that can never install.
	if alg, _ := keys.ParseAlgorithm(c.SECCKeyAlgorithm); c.SECCLeafProfile == "iso15118-2" && c.SECCKeyAlgorithm != "" && alg != keys.P256 {
		return fmt.Errorf("config: secc_key_algorithm %q conflicts with secc_leaf_profile iso15118-2, which requires P-256 (ISO 15118-20 keys: ask for a V2G20 CSR, whose key is secc20_key_algorithm)", c.SECCKeyAlgorithm)
	}
	if err := checkSECC20KeyAlgorithm(c.SECC20KeyAlgorithm); err != nil {
		return err
	}
	if err := checkSECCIDs(c.SECCIDs); err != nil {
		return err
	}
	for name, v := range map[string]string{"csms_key_backend": c.CSMSKeyBackend, "secc_key_backend": c.SECCKeyBackend} {
		if _, err := keys.ParseKind(v); err != nil {
			return fmt.Errorf("config: %s: %w", name, err)
		}
	}
	if c.MaxStoreBytes < 0 || c.MaxStoreEntries < 0 || c.MinKeptLeaves < 0 || c.CSRExpiry < 0 || c.GCInterval < 0 {
		return errors.New("config: limits must not be negative")
	}
	if c.ExpiryWarningDays < 0 || c.ExpiryCriticalDays < 0 {
		return errors.New("config: expiry_warning_days and expiry_critical_days must not be negative")
	}
	// A critical threshold beyond the warning one would make every warning critical at once.
	if w, k := c.ExpiryThresholds(); k > w {
		return fmt.Errorf("config: expiry_critical_days (%d) must not exceed expiry_warning_days (%d)", int(k.Hours()/24), int(w.Hours()/24))
	}
	return nil
}

// Duration is a time.Duration that reads from YAML either as a Go duration string ("20m") or
// as a number of seconds (the reference's unit).
type Duration time.Duration

// UnmarshalYAML accepts "90s", "20m", "1h" or a plain number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if secs, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is neither a duration nor a number of seconds", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
