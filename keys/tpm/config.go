package tpm

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultDevice is the TPM used when neither Device nor Address is configured: the kernel's
// resource-managed TPM device, which lets several processes (evsesec, OpenSSL in the TLS
// stacks) share the TPM.
const DefaultDevice = "/dev/tpmrm0"

// OwnerHierarchy is the default parent handle (TPM_RH_OWNER). Keys created under it are loaded
// under the storage primary key that draft-bottomley-tpm2-keys derives from the owner seed (ECC
// P-256, template H-2), exactly as OpenSSL's tpm2 provider does, so the two interoperate.
const OwnerHierarchy uint32 = 0x40000001

// DefaultTimeout bounds one operation on a socket-connected TPM. It is generous because RSA key
// generation inside a TPM can take tens of seconds.
const DefaultTimeout = 2 * time.Minute

// Config says how to reach the TPM and under which parent to create keys.
type Config struct {
	// Device is the TPM character device. Empty means DefaultDevice, unless Address is set.
	Device string
	// Address is the socket of a TPM simulator (swtpm) speaking raw TPM commands:
	// "tcp://127.0.0.1:2321", "unix:///run/swtpm/sock", or the TCTI strings tpm2-tools and
	// tpm2-openssl use ("swtpm:host=127.0.0.1,port=2321", "swtpm:path=/run/swtpm/sock",
	// "device:/dev/tpmrm0"), so that an integrator can copy TPM2OPENSSL_TCTI. Setting both
	// Device and Address is an error.
	Address string
	// ParentHandle is the parent of new keys: 0 or OwnerHierarchy for the owner hierarchy
	// (the default, and what OpenSSL's tpm2 provider uses), or a persistent key handle
	// (0x81xxxxxx) provisioned by the integrator. Keys read from files use the parent recorded
	// in the file.
	ParentHandle uint32
	// OwnerAuth is the authorization value of the owner hierarchy, or of the persistent parent
	// key. Empty, as on most stations, means none.
	OwnerAuth string
	// Timeout bounds one operation on a socket; 0 means DefaultTimeout. A device file has no
	// timeout.
	Timeout time.Duration
}

// endpoint is a parsed Config: how to open one connection to the TPM.
type endpoint struct {
	device  string // character device path, or
	network string // "tcp" or "unix", with
	address string // host:port or socket path
}

// parseEndpoint validates the Device and Address settings.
func (c Config) parseEndpoint() (endpoint, error) {
	if c.Device != "" && c.Address != "" {
		return endpoint{}, fmt.Errorf("tpm: configure either a device (%q) or an address (%q), not both", c.Device, c.Address)
	}
	if c.Address == "" {
		dev := c.Device
		if dev == "" {
			dev = DefaultDevice
		}
		return endpoint{device: dev}, nil
	}
	return parseAddress(c.Address)
}

// parseAddress reads the Address forms documented on Config.
func parseAddress(addr string) (endpoint, error) {
	bad := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("tpm: address %q: %s (want tcp://host:port, unix:///path, swtpm:host=H,port=P, swtpm:path=P or device:/path)", addr, why)
	}
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return bad("no scheme")
	}
	switch strings.ToLower(scheme) {
	case "tcp", "unix":
		u, err := url.Parse(addr)
		if err != nil {
			return bad(err.Error())
		}
		if strings.EqualFold(scheme, "tcp") {
			if u.Host == "" || u.Port() == "" {
				return bad("host and port needed")
			}
			return endpoint{network: "tcp", address: u.Host}, nil
		}
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		if p == "" {
			return bad("socket path needed")
		}
		return endpoint{network: "unix", address: p}, nil
	case "device":
		if rest == "" {
			return endpoint{device: DefaultDevice}, nil
		}
		return endpoint{device: rest}, nil
	case "swtpm":
		// TCTI configuration: comma-separated key=value pairs, defaults as in tss2-tcti-swtpm.
		host, port, path := "localhost", "2321", ""
		if rest != "" {
			for _, kv := range strings.Split(rest, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return bad(fmt.Sprintf("option %q is not key=value", kv))
				}
				switch k {
				case "host":
					host = v
				case "port":
					port = v
				case "path":
					path = v
				default:
					return bad(fmt.Sprintf("unknown swtpm option %q", k))
				}
			}
		}
		if path != "" {
			return endpoint{network: "unix", address: path}, nil
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return bad("port is not a number")
		}
		return endpoint{network: "tcp", address: net.JoinHostPort(host, port)}, nil
	case "mssim":
		return bad("the mssim protocol (Microsoft simulator with platform port) is not supported; run swtpm, or use a device")
	}
	return bad(fmt.Sprintf("unknown scheme %q", scheme))
}

// TCTI returns the TCTI string that points tpm2-tools (TPM2TOOLS_TCTI) and OpenSSL's tpm2
// provider (TPM2OPENSSL_TCTI) at the same TPM, e.g. "device:/dev/tpmrm0" or
// "swtpm:host=127.0.0.1,port=2321", for doctor output and for consumers' configuration.
func (c Config) TCTI() (string, error) {
	ep, err := c.parseEndpoint()
	if err != nil {
		return "", err
	}
	return ep.tcti(), nil
}

func (ep endpoint) tcti() string {
	switch ep.network {
	case "tcp":
		host, port, _ := net.SplitHostPort(ep.address)
		return "swtpm:host=" + host + ",port=" + port
	case "unix":
		return "swtpm:path=" + ep.address
	}
	return "device:" + ep.device
}

// String describes where the TPM is, for logs and doctor.
func (ep endpoint) String() string {
	switch ep.network {
	case "tcp":
		return "tcp://" + ep.address
	case "unix":
		return "unix://" + ep.address
	}
	return ep.device
}

// open makes one connection to the TPM. Failures to reach it wrap ErrUnavailable.
func (ep endpoint) open(timeout time.Duration) (transport.TPMCloser, error) {
	if ep.network == "" {
		t, err := linuxtpm.Open(ep.device)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, ep.device, err)
		}
		return t, nil
	}
	conn, err := net.DialTimeout(ep.network, ep.address, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, ep, err)
	}
	// A simulator serves one client at a time; without a deadline a busy one would block us
	// forever.
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, ep, err)
	}
	return transport.FromReadWriteCloser(conn), nil
}

// ParseHandle reads a parent handle from configuration: "owner" (OwnerHierarchy), or a number
// in hex with 0x prefix ("0x81000001") or decimal. Only the owner hierarchy and persistent
// handles (0x81xxxxxx) are accepted as parents.
func ParseHandle(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "owner") {
		return OwnerHierarchy, nil
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("tpm: parent handle %q is not a number", s)
	}
	h := uint32(v)
	if err := checkParent(h); err != nil {
		return 0, err
	}
	return h, nil
}

// checkParent accepts the owner hierarchy and persistent handles.
func checkParent(h uint32) error {
	if h == OwnerHierarchy || h>>24 == 0x81 {
		return nil
	}
	return fmt.Errorf("tpm: parent handle 0x%08x is neither the owner hierarchy (0x%08x) nor a persistent handle (0x81xxxxxx)", h, OwnerHierarchy)
}

// parent returns the configured parent as a TPM handle.
func (c Config) parent() tpm2.TPMHandle {
	if c.ParentHandle == 0 {
		return tpm2.TPMHandle(OwnerHierarchy)
	}
	return tpm2.TPMHandle(c.ParentHandle)
}
