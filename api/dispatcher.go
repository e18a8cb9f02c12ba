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

// command is one row of the interface table: the arguments it takes and the handler. The
// dispatcher checks the declared arguments before the handler runs, so a handler cannot forget
// to insist on one, and a handler can read no argument the row does not declare.
type command struct {
	params []Param
	run    handler
}

// The JSON types of arguments, as the interface YAML names them.
const (
	typeString  = "string"
	typeBoolean = "boolean"
	typeObject  = "object"
	typeArray   = "array"
)

// req declares a required argument: absent or null is an argument error.
func req(name, jsonType string) Param { return Param{Name: name, Type: jsonType, Required: true} }

// commands is the interface: every command of interfaces-evse_security.yaml, by name, with its
// arguments as the YAML declares them (every argument of the interface is required; a test holds
// this table against the YAML). This table is where a reader starts.
var commands = map[string]command{
	"install_ca_certificate": {
		[]Param{req("certificate", typeString), req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			pem, t := a.str("certificate"), a.caType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.InstallCACertificate(pem, t)
		}},
	"delete_certificate": {
		[]Param{req("certificate_hash_data", typeObject)},
		func(_ context.Context, s *store.Store, a *args) any {
			h := a.hashData("certificate_hash_data")
			if a.failed() {
				return nil
			}
			return s.DeleteCertificate(h)
		}},
	"update_leaf_certificate": {
		[]Param{req("certificate_chain", typeString), req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			chain, t := a.str("certificate_chain"), a.leafType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.UpdateLeafCertificate(chain, t)
		}},
	"generate_certificate_signing_request": {
		[]Param{req("certificate_type", typeString), req("country", typeString), req("organization", typeString),
			req("common", typeString), req("use_tpm", typeBoolean)},
		func(_ context.Context, s *store.Store, a *args) any {
			t := a.leafType("certificate_type")
			country, org, common := a.str("country"), a.str("organization"), a.str("common")
			useTPM := a.boolean("use_tpm")
			if a.failed() {
				return nil
			}
			return s.GenerateCSR(t, country, org, common, useTPM)
		}},
	"get_leaf_certificate_info": {
		[]Param{req("certificate_type", typeString), req("encoding", typeString), req("include_ocsp", typeBoolean)},
		func(_ context.Context, s *store.Store, a *args) any {
			t, enc, ocsp := a.leafType("certificate_type"), a.encoding("encoding"), a.boolean("include_ocsp")
			if a.failed() {
				return nil
			}
			return s.GetLeafCertificateInfo(t, enc, ocsp)
		}},
	"get_all_valid_certificates_info": {
		[]Param{req("certificate_type", typeString), req("encoding", typeString), req("include_ocsp", typeBoolean)},
		func(_ context.Context, s *store.Store, a *args) any {
			t, enc, ocsp := a.leafType("certificate_type"), a.encoding("encoding"), a.boolean("include_ocsp")
			if a.failed() {
				return nil
			}
			return s.GetAllValidCertificatesInfo(t, enc, ocsp)
		}},
	"get_leaf_expiry_days_count": {
		[]Param{req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			t := a.leafType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.GetLeafExpiryDaysCount(t)
		}},
	"get_v2g_ocsp_request_data": {
		nil,
		func(_ context.Context, s *store.Store, a *args) any {
			return s.GetV2GOCSPRequestData()
		}},
	"get_mo_ocsp_request_data": {
		[]Param{req("certificate_chain", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			chain := a.str("certificate_chain")
			if a.failed() {
				return nil
			}
			return s.GetMOOCSPRequestData(chain)
		}},
	"update_ocsp_cache": {
		[]Param{req("certificate_hash_data", typeObject), req("ocsp_response", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			h, resp := a.hashData("certificate_hash_data"), a.str("ocsp_response")
			if a.failed() {
				return nil
			}
			s.UpdateOCSPCache(h, resp) // the interface has no result; the store logs why it rejected
			return nil
		}},
	"verify_file_signature": {
		[]Param{req("file_path", typeString), req("signing_certificate", typeString), req("signature", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			path, cert, sig := a.str("file_path"), a.str("signing_certificate"), a.str("signature")
			if a.failed() {
				return nil
			}
			return s.VerifyFileSignature(path, cert, sig)
		}},

	// evsesec's own commands, beside the interface's: the library operations the reference
	// module did not expose.
	"certificate_signing_request_failed": {
		[]Param{req("csr", typeString), req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			csr, t := a.str("csr"), a.leafType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.CertificateSigningRequestFailed(csr, t)
		}},
	"verify_firmware_signer": {
		[]Param{req("signing_certificate", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			chain := a.str("signing_certificate")
			if a.failed() {
				return nil
			}
			return s.VerifyFirmwareSigner(chain)
		}},
	"garbage_collect": {
		nil,
		func(_ context.Context, s *store.Store, a *args) any {
			return s.GarbageCollect()
		}},
	"update_certificate_links": {
		nil,
		func(_ context.Context, s *store.Store, a *args) any {
			return s.UpdateCertificateLinks()
		}},
	"verify_certificate": {
		[]Param{req("certificate_chain", typeString), req("certificate_types", typeArray)},
		func(_ context.Context, s *store.Store, a *args) any {
			chain, types := a.str("certificate_chain"), a.leafTypes("certificate_types")
			if a.failed() {
				return nil
			}
			return s.VerifyCertificate(chain, types)
		}},
	"get_installed_certificates": {
		[]Param{req("certificate_types", typeArray)},
		func(_ context.Context, s *store.Store, a *args) any {
			types := a.certTypes("certificate_types")
			if a.failed() {
				return nil
			}
			return s.GetInstalledCertificates(types)
		}},
	"is_ca_certificate_installed": {
		[]Param{req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			t := a.caType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.IsCACertificateInstalled(t)
		}},
	"get_verify_file": {
		[]Param{req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			t := a.caType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.GetVerifyFile(t)
		}},
	"get_verify_location": {
		[]Param{req("certificate_type", typeString)},
		func(_ context.Context, s *store.Store, a *args) any {
			t := a.caType("certificate_type")
			if a.failed() {
				return nil
			}
			return s.GetVerifyLocation(t)
		}},
}

// Param is one argument of a command as the dispatcher declares it.
type Param struct {
	// Name is the argument's name in the argument object.
	Name string
	// Type is its JSON type as the interface YAML writes it: string, boolean, object or array.
	Type string
	// Required says that a call without it, or with null, is an argument error.
	Required bool
}

// Params returns the arguments command name takes, in the table's order; ok is false for an
// unknown command. Tests hold it against the interface YAML; tools can use it to build calls.
func Params(name string) (params []Param, ok bool) {
	c, ok := commands[name]
	if !ok {
		return nil, false
	}
	return append([]Param(nil), c.params...), true
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
	c, ok := commands[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCommand, name)
	}
	a, err := parseArgs(name, argsJSON, c.params)
	if err != nil {
		return nil, err
	}
	// Every required argument is checked here, before the handler runs, whatever its type: a
	// missing flag must not read as false and run the command (a CSR would write a key).
	if err := a.checkRequired(); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("%s: internal error: %v", name, r)
		}
	}()
	v := c.run(ctx, d.store, a)
	if a.err != nil {
		return nil, a.err
	}
	return json.Marshal(v)
}
