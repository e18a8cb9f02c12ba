package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Block is one certificate found in PEM text. Start and End are byte offsets into the parsed
// input: Start is the first '-' of "-----BEGIN", End is just past the line break that follows the
// "-----END ...-----" marker (or past the marker itself when no line break follows), so that
// data[Start:End] is exactly the block and a caller can cut it out of a file.
type Block struct {
	Cert       *x509.Certificate
	Label      string
	Start, End int
}

// BlockError reports a certificate-labelled PEM block that does not decode to a certificate.
// One such block fails the whole input, as OpenSSL's PEM_X509_INFO_read_bio does, so that a
// corrupt bundle is rejected instead of silently losing a certificate.
type BlockError struct {
	Index  int    // 0-based ordinal of the block's "-----BEGIN " marker among all markers in the input
	Offset int    // byte offset of that marker
	Label  string // the label of the BEGIN line, e.g. "CERTIFICATE"
	Err    error  // what is wrong with the block
}

// Error names the block by its 0-based index, label and offset.
func (e *BlockError) Error() string {
	return fmt.Sprintf("PEM block %d (%s) at byte %d: %v", e.Index, e.Label, e.Offset, e.Err)
}

// Unwrap returns the underlying cause, e.g. an x509 parse error.
func (e *BlockError) Unwrap() error { return e.Err }

const (
	beginMarker = "-----BEGIN "
	endMarker   = "-----END "
	dashes      = "-----"
)

// isCertLabel reports whether a PEM label holds a certificate. TRUSTED CERTIFICATE is OpenSSL's
// certificate with trust settings appended; X509 CERTIFICATE is an old alias.
func isCertLabel(label string) bool {
	return label == "CERTIFICATE" || label == "X509 CERTIFICATE" || label == "TRUSTED CERTIFICATE"
}

// ParsePEMBlocks returns the certificates of PEM text in input order. Text outside PEM blocks is
// ignored (bundles often carry "subject=..." lines between blocks), and blocks with other labels
// (private keys, CRLs, CSRs) are skipped without being decoded. A block labelled CERTIFICATE,
// X509 CERTIFICATE or TRUSTED CERTIFICATE that is malformed, lacks its END line, has broken base64
// or does not hold a certificate fails the whole input with a *BlockError.
//
// It does not use pem.Decode, which silently skips malformed blocks: every "-----BEGIN " marker
// is located here and each certificate-labelled one must parse. Input without any PEM block gives
// no blocks and no error.
func ParsePEMBlocks(data []byte) ([]Block, error) {
	var blocks []Block
	pos := 0
	for index := 0; ; index++ {
		i := bytes.Index(data[pos:], []byte(beginMarker))
		if i < 0 {
			return blocks, nil
		}
		start := pos + i
		label, bodyStart, malformed := parseBeginLine(data, start)
		if !isCertLabel(label) {
			// Not ours to judge: skip only the marker, so a certificate that follows a broken
			// key block is still found.
			pos = start + len(beginMarker)
			continue
		}
		fail := func(err error) ([]Block, error) {
			return nil, &BlockError{Index: index, Offset: start, Label: label, Err: err}
		}
		if malformed != nil {
			return fail(malformed)
		}
		bodyEnd, end, err := findEndLine(data, bodyStart, label)
		if err != nil {
			return fail(err)
		}
		cert, err := decodeCertificateBody(data[bodyStart:bodyEnd], label)
		if err != nil {
			return fail(err)
		}
		blocks = append(blocks, Block{Cert: cert, Label: label, Start: start, End: end})
		pos = end
	}
}

// parseBeginLine reads the BEGIN line starting at data[start]. It returns the label, the offset
// of the first byte after the line, and a non-nil error when the line is not exactly
// "-----BEGIN LABEL-----" followed by optional whitespace and a line break (e.g. the one-line form
// "-----BEGIN CERTIFICATE-----xyz-----END CERTIFICATE-----").
func parseBeginLine(data []byte, start int) (label string, next int, malformed error) {
	lineEnd := len(data)
	next = len(data)
	if j := bytes.IndexByte(data[start:], '\n'); j >= 0 {
		lineEnd = start + j
		next = lineEnd + 1
	}
	rest := data[start+len(beginMarker) : lineEnd]
	j := bytes.Index(rest, []byte(dashes))
	if j < 0 {
		return string(bytes.TrimRight(rest, " \t\r")), next, errors.New("BEGIN line does not end in -----")
	}
	label = string(rest[:j])
	if len(bytes.TrimRight(rest[j+len(dashes):], " \t\r")) != 0 {
		return label, next, errors.New("text follows the BEGIN marker on its line")
	}
	return label, next, nil
}

// findEndLine finds the END marker of a block whose body starts at bodyStart. It returns where
// the body ends (the marker's offset) and where the block ends (past the marker, trailing blanks
// and one line break). A BEGIN marker before any END marker means this block was never closed.
func findEndLine(data []byte, bodyStart int, label string) (bodyEnd, end int, err error) {
	tail := data[bodyStart:]
	e := bytes.Index(tail, []byte(endMarker))
	if e < 0 || bytes.Contains(tail[:e], []byte(beginMarker)) {
		return 0, 0, errors.New("no END line")
	}
	bodyEnd = bodyStart + e
	want := endMarker + label + dashes
	if !bytes.HasPrefix(data[bodyEnd:], []byte(want)) {
		return 0, 0, fmt.Errorf("END line does not match, want %q", want)
	}
	end = bodyEnd + len(want)
	for end < len(data) && (data[end] == ' ' || data[end] == '\t' || data[end] == '\r') {
		end++
	}
	if end < len(data) && data[end] == '\n' {
		end++
	} else {
		// No line break (end of input, or text glued to the marker): the block ends at the
		// marker, so excising it does not take foreign text with it.
		end = bodyEnd + len(want)
	}
	return bodyEnd, end, nil
}

// decodeCertificateBody decodes the base64 body of a certificate block (RFC 1421 header lines
// such as "Proc-Type: ..." are skipped, as OpenSSL does for certificates) and parses the DER.
func decodeCertificateBody(body []byte, label string) (*x509.Certificate, error) {
	body = skipHeaders(body)
	b64 := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			b64 = append(b64, c)
		}
	}
	der := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(der, b64)
	if err != nil {
		return nil, fmt.Errorf("invalid base64: %w", err)
	}
	der = der[:n]
	if len(der) == 0 {
		return nil, errors.New("empty block")
	}
	if label == "TRUSTED CERTIFICATE" {
		// OpenSSL appends an X509_CERT_AUX structure (trust settings, alias) after the
		// certificate; only the leading SEQUENCE is the certificate.
		s := cryptobyte.String(der)
		var elem cryptobyte.String
		if !s.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
			return nil, errors.New("not a DER SEQUENCE")
		}
		der = elem
	}
	cert, err := parseDER(der)
	if err != nil {
		return nil, err
	}
	return cert, nil
}

// skipHeaders drops RFC 1421 header lines ("Name: value") at the start of a PEM body together
// with the blank line that ends them. Base64 never contains ':', so a body without headers is
// returned unchanged.
func skipHeaders(body []byte) []byte {
	first, _, _ := bytes.Cut(body, []byte("\n"))
	if bytes.IndexByte(first, ':') < 0 {
		return body
	}
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(bytes.TrimSpace(line)) == 0 {
			return rest
		}
	}
	return body // the headers never end: let base64 decoding report the block as broken
}

// ParseCertificates returns the certificates in data, which may be PEM or DER. Data containing a
// "-----BEGIN" marker is parsed as PEM exactly as ParsePEMBlocks does, including its errors.
// Otherwise non-empty data that parses as one or more concatenated DER certificates gives those.
// Anything else (empty input, plain text, garbage) gives no certificates and no error: whether
// "no certificate" is a failure is the caller's decision, as it is in the reference.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		blocks, err := ParsePEMBlocks(data)
		if err != nil {
			return nil, err
		}
		certs := make([]*x509.Certificate, len(blocks))
		for i, b := range blocks {
			certs[i] = b.Cert
		}
		return certs, nil
	}
	if len(data) == 0 {
		return nil, nil
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, nil
	}
	return certs, nil
}

// EncodePEM encodes certificates as concatenated "CERTIFICATE" PEM blocks with 64-column base64
// lines, the same text OpenSSL's PEM_write_bio_X509 writes, so files we write read back anywhere.
func EncodePEM(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		// Writing to a bytes.Buffer cannot fail and the block has no headers to reject.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}
