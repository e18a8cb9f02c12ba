package certs

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ErrBase64 is returned (wrapped) by DecodeBase64 for input that is not base64.
var ErrBase64 = errors.New("not valid base64")

// DecodeBase64 decodes standard base64 as OCPP and the interface send it: whitespace and line
// breaks anywhere are ignored and missing padding is tolerated (some backends strip it). Unlike
// the reference, an error is reported instead of an empty result, so "" and garbage can be told
// apart.
func DecodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			return -1
		}
		return r
	}, s)
	clean = strings.TrimRight(clean, "=")
	if clean == "" {
		return nil, errors.Join(ErrBase64, errors.New("empty input"))
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(clean)
	if err != nil {
		return nil, errors.Join(ErrBase64, err)
	}
	return b, nil
}

// EncodeBase64 encodes b as standard, padded base64 in lines of 64 characters, each ending in a
// line break, as OpenSSL writes it (and the reference's base64 helper did).
func EncodeBase64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 64 {
		sb.WriteString(enc[:64])
		sb.WriteByte('\n')
		enc = enc[64:]
	}
	if enc != "" {
		sb.WriteString(enc)
		sb.WriteByte('\n')
	}
	return sb.String()
}
