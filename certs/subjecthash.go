package certs

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Universal tags of the string types OpenSSL canonicalises (ASN1_MASK_CANON). cryptobyte/asn1
// names only some of them.
const (
	tagUTF8String      = cbasn1.UTF8String      // 12
	tagPrintableString = cbasn1.PrintableString // 19
	tagT61String       = cbasn1.T61String       // 20
	tagIA5String       = cbasn1.IA5String       // 22
	tagVisibleString   = cbasn1.Tag(26)
	tagUniversalString = cbasn1.Tag(28)
	tagBMPString       = cbasn1.Tag(30)
)

// CanonicalName returns OpenSSL's canonical encoding of a DER Name (x509_name_canon), the form
// OpenSSL hashes for X509_NAME_hash and compares in X509_NAME_cmp. Every value of a text type
// (UTF8String, BMPString, UniversalString, PrintableString, T61String read as Latin-1, IA5String,
// VisibleString) is converted to UTF-8, trimmed of ASCII whitespace, has inner whitespace runs
// collapsed to one space and ASCII letters lowercased, and is re-encoded as a UTF8String; other
// values are kept byte for byte. Each RDN is a DER SET OF (sorted); the RDN SETs are concatenated
// without the outer SEQUENCE. An empty name, and empty RDNs, encode as nothing, as in OpenSSL.
//
// It fails on input that is not a DER Name or whose strings are not valid in their encoding;
// OpenSSL refuses to load such certificates at all. OpenSSL (like crypto/x509) also refuses
// values of a few types it does not expect in names (VisibleString, OCTET STRING,
// context-specific tags); those are accepted here and treated as described above.
func CanonicalName(rawName []byte) ([]byte, error) {
	return appendCanonicalName(make([]byte, 0, len(rawName)), rawName)
}

// span is one encoded attribute inside the scratch buffer of an RDN.
type span struct{ start, end int }

// appendCanonicalName appends the canonical encoding of rawName to dst, so that callers that
// only hash it can bring their own buffer.
func appendCanonicalName(dst, rawName []byte) ([]byte, error) {
	in := cryptobyte.String(rawName)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("name: not a DER SEQUENCE")
	}
	// Scratch buffers reused for every RDN: the canonical attributes of the current RDN (their
	// SET header needs their total length first, and a multi-valued RDN must be sorted) and the
	// UTF-8 form of the current value.
	var atvs, text []byte
	var spans []span
	for n := 0; !rdns.Empty(); n++ {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return nil, fmt.Errorf("name: RDN %d: not a SET", n)
		}
		atvs, spans = atvs[:0], spans[:0]
		for !set.Empty() {
			var atv, oid cryptobyte.String
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) {
				return nil, fmt.Errorf("name: RDN %d: malformed attribute", n)
			}
			if !validOID(oid) {
				return nil, fmt.Errorf("name: RDN %d: malformed attribute type", n)
			}
			element := atv // the value's whole TLV, as nothing may follow it
			var contents cryptobyte.String
			var tag cbasn1.Tag
			if !atv.ReadAnyASN1(&contents, &tag) || !atv.Empty() {
				return nil, fmt.Errorf("name: RDN %d: malformed attribute value", n)
			}

			start := len(atvs)
			if isCanonString(tag) {
				var err error
				if text, err = appendUTF8(text[:0], tag, contents); err != nil {
					return nil, fmt.Errorf("name: RDN %d: %w", n, err)
				}
				text = canonicalText(text)
				atvs = appendHeader(atvs, cbasn1.SEQUENCE, len(oid)+headerLen(len(text))+len(text))
				atvs = append(atvs, oid...)
				atvs = appendHeader(atvs, tagUTF8String, len(text))
				atvs = append(atvs, text...)
			} else {
				atvs = appendHeader(atvs, cbasn1.SEQUENCE, len(oid)+len(element))
				atvs = append(atvs, oid...)
				atvs = append(atvs, element...)
			}
			spans = append(spans, span{start, len(atvs)})
		}
		if len(spans) == 0 {
			// OpenSSL keeps names as a flat list of entries tagged with their RDN index, so an RDN
			// without entries leaves no trace in the canonical form.
			continue
		}
		dst = appendHeader(dst, cbasn1.SET, len(atvs))
		if len(spans) == 1 {
			dst = append(dst, atvs...)
			continue
		}
		// DER SET OF: elements in ascending order of their encodings.
		slices.SortFunc(spans, func(a, b span) int {
			return bytes.Compare(atvs[a.start:a.end], atvs[b.start:b.end])
		})
		for _, s := range spans {
			dst = append(dst, atvs[s.start:s.end]...)
		}
	}
	return dst, nil
}

// isCanonString reports whether OpenSSL canonicalises a value of this (primitive, universal) tag.
func isCanonString(tag cbasn1.Tag) bool {
	switch tag {
	case tagUTF8String, tagBMPString, tagUniversalString, tagPrintableString,
		tagT61String, tagIA5String, tagVisibleString:
		return true
	}
	return false
}

// appendUTF8 appends the UTF-8 form of a string value to dst. The one-byte types are read as
// Latin-1 (as OpenSSL does, T61String included); BMPString is UCS-2 and UniversalString UCS-4,
// big-endian; code points that are not Unicode scalar values are an error, as in OpenSSL.
func appendUTF8(dst []byte, tag cbasn1.Tag, v []byte) ([]byte, error) {
	switch tag {
	case tagUTF8String:
		if !utf8.Valid(v) {
			return nil, errors.New("invalid UTF8String")
		}
		return append(dst, v...), nil
	case tagBMPString:
		if len(v)%2 != 0 {
			return nil, errors.New("invalid BMPString: odd length")
		}
		for i := 0; i < len(v); i += 2 {
			r := rune(binary.BigEndian.Uint16(v[i:]))
			if !utf8.ValidRune(r) { // a surrogate: UCS-2 has no pairs
				return nil, fmt.Errorf("invalid BMPString: code point %#04x", r)
			}
			dst = utf8.AppendRune(dst, r)
		}
		return dst, nil
	case tagUniversalString:
		if len(v)%4 != 0 {
			return nil, errors.New("invalid UniversalString: length not a multiple of 4")
		}
		for i := 0; i < len(v); i += 4 {
			u := binary.BigEndian.Uint32(v[i:])
			if u > utf8.MaxRune || !utf8.ValidRune(rune(u)) {
				return nil, fmt.Errorf("invalid UniversalString: code point %#x", u)
			}
			dst = utf8.AppendRune(dst, rune(u))
		}
		return dst, nil
	}
	for _, c := range v {
		if c < utf8.RuneSelf {
			dst = append(dst, c)
		} else {
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return dst, nil
}

// canonicalText applies OpenSSL's asn1_string_canon to UTF-8 text in place: trim ASCII
// whitespace, collapse inner runs of it to one space, lowercase ASCII letters. Bytes of
// multi-byte sequences are >= 0x80 and never whitespace or letters, so working on bytes is safe.
func canonicalText(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isASCIISpace(b[i]) {
		i++
	}
	for j > i && isASCIISpace(b[j-1]) {
		j--
	}
	out := b[:0]
	for k := i; k < j; {
		c := b[k]
		if isASCIISpace(c) {
			out = append(out, ' ')
			for isASCIISpace(b[k]) { // stops before j: b[j-1] is not a space
				k++
			}
			continue
		}
		out = append(out, lowerASCII(c))
		k++
	}
	return out
}

// isASCIISpace is OpenSSL's ossl_isspace: space, \t, \n, \v, \f, \r.
func isASCIISpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

// validOID checks an encoded OBJECT IDENTIFIER element the way OpenSSL's decoder does: non-empty,
// no subidentifier with a leading 0x80 octet, and a final octet that ends a subidentifier.
func validOID(elem cryptobyte.String) bool {
	var c cryptobyte.String
	if !elem.ReadASN1(&c, cbasn1.OBJECT_IDENTIFIER) || len(c) == 0 || c[len(c)-1]&0x80 != 0 {
		return false
	}
	for i := range c {
		if c[i] == 0x80 && (i == 0 || c[i-1]&0x80 == 0) {
			return false
		}
	}
	return true
}

// headerLen is the size of a DER tag and length for contents of n bytes.
func headerLen(n int) int {
	if n < 0x80 {
		return 2
	}
	h := 2 // tag and the 0x80|count octet, then one octet per byte of n
	for ; n > 0; n >>= 8 {
		h++
	}
	return h
}

// appendHeader appends a DER identifier octet and definite length.
func appendHeader(dst []byte, tag cbasn1.Tag, n int) []byte {
	dst = append(dst, byte(tag))
	if n < 0x80 {
		return append(dst, byte(n))
	}
	var l [8]byte
	k := len(l)
	for ; n > 0; n >>= 8 {
		k--
		l[k] = byte(n)
	}
	dst = append(dst, 0x80|byte(len(l)-k))
	return append(dst, l[k:]...)
}

// NameHash returns OpenSSL's X509_NAME_hash of a DER Name: the first four bytes of the SHA-1 of
// CanonicalName, read little-endian. It is the name part of OpenSSL's hashed directory entries
// ("<hash>.0") and what `openssl x509 -subject_hash` prints.
func NameHash(rawName []byte) (uint32, error) {
	canon, err := CanonicalName(rawName)
	if err != nil {
		return 0, err
	}
	sum := sha1.Sum(canon) // OpenSSL's choice for a directory index, not a security use
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// SubjectHash returns the NameHash of cert's subject. It is 0 when the subject cannot be
// canonicalised, as OpenSSL's X509_NAME_hash_ex returns 0 on failure; crypto/x509 has already
// rejected almost every such name when it parsed cert.
func SubjectHash(cert *x509.Certificate) uint32 {
	h, err := NameHash(cert.RawSubject)
	if err != nil {
		return 0
	}
	return h
}

// FormatNameHash formats a name hash as OpenSSL prints it: eight lowercase hex digits.
func FormatNameHash(h uint32) string {
	return fmt.Sprintf("%08x", h)
}

// NamesEqual reports whether two DER Names are equal under OpenSSL's X509_NAME_cmp, i.e. whether
// their canonical encodings are equal. Go's crypto/x509 compares raw bytes, so names that differ
// only in string type, letter case or spacing link in OpenSSL but not in naive Go code. Byte-equal
// names are equal even if they do not parse; otherwise a name that does not parse equals nothing.
func NamesEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, err := CanonicalName(a)
	if err != nil {
		return false
	}
	cb, err := CanonicalName(b)
	if err != nil {
		return false
	}
	return bytes.Equal(ca, cb)
}
