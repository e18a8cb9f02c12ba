package certs

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrBase64 is returned (wrapped) by DecodeBase64 for input that is not base64.
var ErrBase64 = errors.New("not valid base64")

// DecodeBase64 decodes standard base64 as OCPP and the interface send it: whitespace and line
// breaks anywhere are ignored and missing padding is tolerated (some backends strip it), as are
// non-zero bits in the last character (OpenSSL's decoder, which the reference used, ignores them
// too). Too much padding, padding in the middle, characters outside the standard alphabet and
// input without any data are errors. Unlike the reference, an error is reported instead of an
// empty result, so "" and garbage can be told apart.
func DecodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			return -1
		}
		return r
	}, s)
	data := strings.TrimRight(clean, "=")
	if data == "" {
		return nil, fmt.Errorf("%w: empty input", ErrBase64)
	}
	// Padding completes the last group of four characters: at most as many '=' as that group
	// lacks ("YQ" takes up to two, "YWJj" none).
	if pad, room := len(clean)-len(data), (4-len(data)%4)%4; pad > room {
		return nil, fmt.Errorf("%w: %d padding characters where at most %d fit", ErrBase64, pad, room)
	}
	b, err := base64.RawStdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBase64, err)
	}
	return b, nil
}

// EncodeBase64 encodes b as standard, padded base64 in lines of 64 characters, each ending in a
// line break, as OpenSSL writes it (and the reference's base64 helper did).
func EncodeBase64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	sb.Grow(len(enc) + len(enc)/64 + 1)
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
