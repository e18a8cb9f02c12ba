package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/evsesec/evsesec/store"
)

// ErrUnknownCommand is returned (wrapped) by Call for a command the interface does not have.
var ErrUnknownCommand = errors.New("unknown command")

// Dispatcher runs interface commands against a store. It is safe for concurrent use.
type Dispatcher struct {
	store *store.Store
}

// NewDispatcher returns a dispatcher for s.
func NewDispatcher(s *store.Store) *Dispatcher { return &Dispatcher{store: s} }

// handler runs one command: it reads its arguments from a and returns the result value, which
// is marshalled to JSON as it is (a string result becomes a JSON string, no result is null).
type handler func(ctx context.Context, s *store.Store, a *args) any

// commands is the interface: every command of interfaces-evse_security.yaml, by name. This table
// is where a reader starts.
var commands = map[string]handler{
	"install_ca_certificate": func(_ context.Context, s *store.Store, a *args) any {
		pem, t := a.str("certificate"), a.caType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.InstallCACertificate(pem, t)
	},
	"delete_certificate": func(_ context.Context, s *store.Store, a *args) any {
		h := a.hashData("certificate_hash_data")
		if a.failed() {
			return nil
		}
		return s.DeleteCertificate(h)
	},
	"update_leaf_certificate": func(_ context.Context, s *store.Store, a *args) any {
		chain, t := a.str("certificate_chain"), a.leafType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.UpdateLeafCertificate(chain, t)
	},
	"generate_certificate_signing_request": func(_ context.Context, s *store.Store, a *args) any {
		t := a.leafType("certificate_type")
		country, org, common := a.str("country"), a.str("organization"), a.str("common")
		useTPM := a.boolean("use_tpm")
		if a.failed() {
			return nil
		}
		return s.GenerateCSR(t, country, org, common, useTPM)
	},
	"get_leaf_certificate_info": func(_ context.Context, s *store.Store, a *args) any {
		t, enc, ocsp := a.leafType("certificate_type"), a.encoding("encoding"), a.boolean("include_ocsp")
		if a.failed() {
			return nil
		}
		return s.GetLeafCertificateInfo(t, enc, ocsp)
	},
	"get_all_valid_certificates_info": func(_ context.Context, s *store.Store, a *args) any {
		t, enc, ocsp := a.leafType("certificate_type"), a.encoding("encoding"), a.boolean("include_ocsp")
		if a.failed() {
			return nil
		}
		return s.GetAllValidCertificatesInfo(t, enc, ocsp)
	},
	"get_leaf_expiry_days_count": func(_ context.Context, s *store.Store, a *args) any {
		t := a.leafType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.GetLeafExpiryDaysCount(t)
	},
	"get_v2g_ocsp_request_data": func(_ context.Context, s *store.Store, a *args) any {
		return s.GetV2GOCSPRequestData()
	},
	"get_mo_ocsp_request_data": func(_ context.Context, s *store.Store, a *args) any {
		chain := a.str("certificate_chain")
		if a.failed() {
			return nil
		}
		return s.GetMOOCSPRequestData(chain)
	},
	"update_ocsp_cache": func(_ context.Context, s *store.Store, a *args) any {
		h, resp := a.hashData("certificate_hash_data"), a.str("ocsp_response")
		if a.failed() {
			return nil
		}
		s.UpdateOCSPCache(h, resp) // the interface has no result; the store logs why it rejected
		return nil
	},
	"verify_file_signature": func(_ context.Context, s *store.Store, a *args) any {
		path, cert, sig := a.str("file_path"), a.str("signing_certificate"), a.str("signature")
		if a.failed() {
			return nil
		}
		return s.VerifyFileSignature(path, cert, sig)
	},

	// evsesec's own commands, beside the interface's: the library operations the reference
	// module did not expose.
	"certificate_signing_request_failed": func(_ context.Context, s *store.Store, a *args) any {
		csr, t := a.str("csr"), a.leafType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.CertificateSigningRequestFailed(csr, t)
	},
	"verify_firmware_signer": func(_ context.Context, s *store.Store, a *args) any {
		chain := a.str("signing_certificate")
		if a.failed() {
			return nil
		}
		return s.VerifyFirmwareSigner(chain)
	},
	"garbage_collect": func(_ context.Context, s *store.Store, a *args) any {
		return s.GarbageCollect()
	},
	"update_certificate_links": func(_ context.Context, s *store.Store, a *args) any {
		return s.UpdateCertificateLinks()
	},
	"verify_certificate": func(_ context.Context, s *store.Store, a *args) any {
		chain, types := a.str("certificate_chain"), a.leafTypes("certificate_types")
		if a.failed() {
			return nil
		}
		return s.VerifyCertificate(chain, types)
	},
	"get_installed_certificates": func(_ context.Context, s *store.Store, a *args) any {
		types := a.certTypes("certificate_types")
		if a.failed() {
			return nil
		}
		return s.GetInstalledCertificates(types)
	},
	"is_ca_certificate_installed": func(_ context.Context, s *store.Store, a *args) any {
		t := a.caType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.IsCACertificateInstalled(t)
	},
	"get_verify_file": func(_ context.Context, s *store.Store, a *args) any {
		t := a.caType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.GetVerifyFile(t)
	},
	"get_verify_location": func(_ context.Context, s *store.Store, a *args) any {
		t := a.caType("certificate_type")
		if a.failed() {
			return nil
		}
		return s.GetVerifyLocation(t)
	},
}

// Commands returns the names of all commands, sorted.
func Commands() []string {
	out := make([]string, 0, len(commands))
	for n := range commands {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Call runs command name with its JSON argument object and returns the JSON result. The error is
// an *ArgError for bad arguments, wraps ErrUnknownCommand for an unknown name, and is nil
// whenever the command ran, whatever its result code. A panic inside a command is turned into an
// error, so no input can take the service down.
func (d *Dispatcher) Call(ctx context.Context, name string, argsJSON json.RawMessage) (result json.RawMessage, err error) {
	h, ok := commands[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCommand, name)
	}
	a, err := parseArgs(name, argsJSON)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("%s: internal error: %v", name, r)
		}
	}()
	v := h(ctx, d.store, a)
	if a.err != nil {
		return nil, a.err
	}
	return json.Marshal(v)
}
