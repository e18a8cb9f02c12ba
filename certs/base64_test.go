package certs

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/internal/testtool"
)

// TestDecodeBase64 covers what OCPP backends send: padded and unpadded base64, line breaks and
// spaces anywhere; and what must be refused with an error (never an empty "success", the
// reference's defect 17).
func TestDecodeBase64(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = byte(i * 7)
	}
	accept := []struct {
		name, in string
		want     []byte
	}{
		{"no padding needed", "YWJj", []byte("abc")},
		{"one pad", "YWI=", []byte("ab")},
		{"two pads", "YQ==", []byte("a")},
		{"one pad missing", "YWI", []byte("ab")},
		{"two pads missing", "YQ", []byte("a")},
		{"one of two pads", "YQ=", []byte("a")},
		{"longer, unpadded", "YWJjZA", []byte("abcd")},
		{"OpenSSL lines of 64", EncodeBase64(long), long},
		{"CRLF lines", strings.ReplaceAll(EncodeBase64(long), "\n", "\r\n"), long},
		{"one line", base64.StdEncoding.EncodeToString(long), long},
		{"whitespace everywhere", " Y W\tJ\r\nj \v\f", []byte("abc")},
		{"whitespace inside the padding", "YQ= =\n", []byte("a")},
		// OpenSSL's decoder ignores the unused bits of the last character; so do we.
		{"non-zero trailing bits", "YR==", []byte("a")},
		{"zero bytes", "AAAA", []byte{0, 0, 0}},
	}
	for _, tc := range accept {
		t.Run("accept/"+tc.name, func(t *testing.T) {
			got, err := DecodeBase64(tc.in)
			if err != nil {
				t.Fatalf("DecodeBase64(%q): %v", tc.in, err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("DecodeBase64(%q) = %x, want %x", tc.in, got, tc.want)
			}
		})
	}

	reject := []struct{ name, in string }{
		{"empty", ""},
		{"only whitespace", " \r\n\t"},
		{"only padding", "=="},
		{"padding on a full group", "YWJj="},
		{"three pads", "YQ==="},
		{"too many pads after a partial group", "YWJjZA==="},
		{"padding in the middle", "YQ==YQ=="},
		{"one character left over", "YWJjZ"},
		{"single character", "Y"},
		{"URL-safe alphabet", "ab-_"},
		{"punctuation", "YWJj!"},
		{"NUL byte", "YW\x00Jj"},
		{"non-ASCII", "YWJj\u00e4"},
		{"PEM armour", "-----BEGIN CERTIFICATE-----\nYWJj\n-----END CERTIFICATE-----\n"},
		{"text", "OCSP_MOCK_RESPONSE_DATA"},
	}
	for _, tc := range reject {
		t.Run("reject/"+tc.name, func(t *testing.T) {
			got, err := DecodeBase64(tc.in)
			if err == nil {
				t.Fatalf("DecodeBase64(%q) = %x, want an error", tc.in, got)
			}
			if !errors.Is(err, ErrBase64) {
				t.Fatalf("DecodeBase64(%q) error %v does not wrap ErrBase64", tc.in, err)
			}
			if got != nil {
				t.Fatalf("DecodeBase64(%q) returned %x with its error", tc.in, got)
			}
		})
	}
}

// TestEncodeBase64 checks OpenSSL's layout: 64 characters a line, a line break after the last
// (partial) line, nothing for empty input, and no size limit (the reference's encoder overflowed
// its buffer above about 3 KiB).
func TestEncodeBase64(t *testing.T) {
	if got := EncodeBase64(nil); got != "" {
		t.Fatalf("EncodeBase64(nil) = %q, want empty", got)
	}
	if got := EncodeBase64([]byte("abc")); got != "YWJj\n" {
		t.Fatalf(`EncodeBase64("abc") = %q, want "YWJj\n"`, got)
	}
	for _, n := range []int{1, 2, 3, 47, 48, 49, 96, 4096, 64 << 10} {
		b := make([]byte, n)
		rand.Read(b)
		enc := EncodeBase64(b)
		if !strings.HasSuffix(enc, "\n") {
			t.Fatalf("n=%d: no final line break", n)
		}
		lines := strings.Split(strings.TrimSuffix(enc, "\n"), "\n")
		for i, l := range lines {
			if i < len(lines)-1 && len(l) != 64 || len(l) == 0 || len(l) > 64 {
				t.Fatalf("n=%d: line %d has %d characters", n, i, len(l))
			}
		}
		if got := strings.Join(lines, ""); got != base64.StdEncoding.EncodeToString(b) {
			t.Fatalf("n=%d: lines do not join to standard base64", n)
		}
		dec, err := DecodeBase64(enc)
		if err != nil || !bytes.Equal(dec, b) {
			t.Fatalf("n=%d: round trip failed: %v", n, err)
		}
	}
}

// TestBase64AgainstOpenSSL compares both directions with `openssl base64`: our encoding is byte
// for byte OpenSSL's, OpenSSL decodes what we write and we decode what OpenSSL writes.
func TestBase64AgainstOpenSSL(t *testing.T) {
	bin := testtool.Require(t, "openssl")
	dir := t.TempDir()
	for _, n := range []int{0, 1, 2, 3, 48, 49, 100, 3 << 10, 10000} {
		b := make([]byte, n)
		rand.Read(b)
		in := filepath.Join(dir, "in.bin")
		if err := os.WriteFile(in, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "base64", "-e", "-in", in).Output()
		if err != nil {
			t.Fatalf("openssl base64 -e: %v", err)
		}
		if got := EncodeBase64(b); got != string(out) {
			t.Fatalf("n=%d: EncodeBase64 differs from openssl:\n%q\n%q", n, got, out)
		}
		if n == 0 {
			continue // both write nothing, which DecodeBase64 rightly refuses
		}
		dec, err := DecodeBase64(string(out))
		if err != nil || !bytes.Equal(dec, b) {
			t.Fatalf("n=%d: DecodeBase64 of openssl's output: %v", n, err)
		}
		encFile := filepath.Join(dir, "enc.txt")
		if err := os.WriteFile(encFile, []byte(EncodeBase64(b)), 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := exec.Command(bin, "base64", "-d", "-in", encFile).Output()
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("n=%d: openssl base64 -d of our output: %v", n, err)
		}
	}
}

// FuzzDecodeBase64 checks that decoding never panics, that whatever decodes survives a round
// trip, and that canonical base64 always decodes to what the standard library says.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"", "YQ", "YQ==", "YWJj\n", "YR==", "====", "YWJj=", "a b\nc=d", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := DecodeBase64(s)
		if want, stdErr := base64.StdEncoding.Strict().DecodeString(s); stdErr == nil && len(want) > 0 {
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("canonical %q: got %x, %v; want %x", s, got, err, want)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBase64) {
				t.Fatalf("%q: error %v does not wrap ErrBase64", s, err)
			}
			return
		}
		again, err := DecodeBase64(EncodeBase64(got))
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("%q: round trip of %x failed: %v", s, got, err)
		}
	})
}
