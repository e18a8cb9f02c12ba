package pkcs11

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/evsesec/evsesec/keys"
)

// URI is a PKCS#11 URI (RFC 7512) as far as a key reference needs it. The attributes this
// package acts on have fields; the other standard path attributes (manufacturer, model,
// library-*, slot-*) and vendor attributes (x-*) are kept in Extra so that a URI survives a
// round trip, but do not select anything. Query attributes (pin-value, pin-source,
// module-name, module-path) are accepted and dropped: the PIN and module come from Config.
type URI struct {
	// Token is the token label ("token").
	Token string
	// Serial is the token serial number ("serial").
	Serial string
	// Object is the object label, CKA_LABEL ("object").
	Object string
	// ID is the object identifier, CKA_ID ("id").
	ID []byte
	// Type is the object class ("type"): "private", "public", "cert", "secret-key", "data", or
	// empty for any.
	Type string
	// Extra holds the other path attributes by name, values decoded.
	Extra map[string]string
}

// pathAttrs are RFC 7512's path attribute names other than those URI has fields for.
var pathAttrs = map[string]bool{
	"manufacturer": true, "model": true, "library-manufacturer": true,
	"library-description": true, "library-version": true, "slot-description": true,
	"slot-manufacturer": true, "slot-id": true,
}

// queryAttrs are RFC 7512's query attribute names.
var queryAttrs = map[string]bool{"pin-source": true, "pin-value": true, "module-name": true, "module-path": true}

var objectTypes = map[string]bool{"cert": true, "data": true, "private": true, "public": true, "secret-key": true}

// ParseURI reads a pkcs11: URI. The scheme is case-insensitive; attribute values are
// percent-decoded. A repeated or unknown (non x-) path attribute, a bad percent escape or an
// unknown object type is an error wrapping keys.ErrMalformed.
func ParseURI(s string) (URI, error) {
	var u URI
	bad := func(format string, args ...any) (URI, error) {
		return URI{}, fmt.Errorf("%w: pkcs11 URI: %s", keys.ErrMalformed, fmt.Sprintf(format, args...))
	}
	s = strings.TrimSpace(s)
	if len(s) < len(keys.URIScheme) || !strings.EqualFold(s[:len(keys.URIScheme)], keys.URIScheme) {
		return bad("does not start with %q", keys.URIScheme)
	}
	path, query, _ := strings.Cut(s[len(keys.URIScheme):], "?")
	seen := map[string]bool{}
	if path != "" {
		for _, attr := range strings.Split(path, ";") {
			name, raw, ok := strings.Cut(attr, "=")
			if !ok || name == "" {
				return bad("path attribute %q is not name=value", clip(attr))
			}
			if seen[name] {
				return bad("path attribute %q repeated", name)
			}
			seen[name] = true
			value, err := unescape(raw)
			if err != nil {
				return bad("attribute %q: %v", name, err)
			}
			switch {
			case name == "token":
				u.Token = string(value)
			case name == "serial":
				u.Serial = string(value)
			case name == "object":
				u.Object = string(value)
			case name == "id":
				u.ID = value
			case name == "type":
				if !objectTypes[string(value)] {
					return bad("unknown object type %q", clip(string(value)))
				}
				u.Type = string(value)
			case pathAttrs[name] || strings.HasPrefix(name, "x-"):
				if u.Extra == nil {
					u.Extra = map[string]string{}
				}
				u.Extra[name] = string(value)
			default:
				return bad("unknown path attribute %q", clip(name))
			}
		}
	}
	if query != "" {
		for _, attr := range strings.Split(query, "&") {
			name, raw, ok := strings.Cut(attr, "=")
			if !ok || name == "" {
				return bad("query attribute is not name=value")
			}
			if !queryAttrs[name] && !strings.HasPrefix(name, "x-") {
				return bad("unknown query attribute %q", clip(name))
			}
			// The value is checked for well-formedness only; it may be a PIN, so it goes
			// nowhere, not even into an error message.
			if _, err := unescape(raw); err != nil {
				return bad("query attribute %q: bad percent escape", name)
			}
		}
	}
	return u, nil
}

// clip shortens untrusted text quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// unescape decodes RFC 3986 percent escapes.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return nil, fmt.Errorf("bad percent escape at offset %d", i)
		}
		out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return out, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// escape percent-encodes everything but RFC 7512's pk11-pchar characters that need no
// escaping in a path attribute value.
func escape(v []byte) string {
	var b strings.Builder
	for _, c := range v {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~:[]@!$'()*+,=&", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// escapeAll percent-encodes every byte, as RFC 7512 recommends for the binary id attribute.
func escapeAll(v []byte) string {
	var b strings.Builder
	for _, c := range v {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// String returns the URI in the form this package writes: the path attributes token, serial,
// object, id, type, then Extra sorted by name; no query.
func (u URI) String() string {
	var attrs []string
	add := func(name, value string) { attrs = append(attrs, name+"="+value) }
	if u.Token != "" {
		add("token", escape([]byte(u.Token)))
	}
	if u.Serial != "" {
		add("serial", escape([]byte(u.Serial)))
	}
	if u.Object != "" {
		add("object", escape([]byte(u.Object)))
	}
	if len(u.ID) > 0 {
		add("id", escapeAll(u.ID))
	}
	if u.Type != "" {
		add("type", escape([]byte(u.Type)))
	}
	names := make([]string, 0, len(u.Extra))
	for name := range u.Extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		add(name, escape([]byte(u.Extra[name])))
	}
	return keys.URIScheme + strings.Join(attrs, ";")
}

// Equal reports whether two URIs name the same object with the same attributes.
func (u URI) Equal(v URI) bool { return u.String() == v.String() }

// KeyFile returns the content of a key file for the URI: the URI and a newline.
func (u URI) KeyFile() []byte { return []byte(u.String() + "\n") }

// ParseKeyFile reads the URI of a PKCS#11 key file (see keys.PKCS11URI for the layout). A file
// that is not a PKCS#11 key file gives an error wrapping keys.ErrNoKey; a bad URI one wrapping
// keys.ErrMalformed.
func ParseKeyFile(keyFile []byte) (URI, error) {
	s, ok := keys.PKCS11URI(keyFile)
	if !ok {
		if len(bytes.TrimSpace(keyFile)) == 0 {
			return URI{}, fmt.Errorf("%w: empty key file", keys.ErrNoKey)
		}
		return URI{}, fmt.Errorf("%w: not a pkcs11: key file", keys.ErrNoKey)
	}
	return ParseURI(s)
}
