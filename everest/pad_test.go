package everest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/internal/testtool"
)

// paddedResults are real result messages of every wire: a result and an error result (or the
// fallback value on the wires without one).
func paddedResults(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	retval := json.RawMessage(`{"status":"Accepted","info":{"certificate_type":"CSMS","key":"/etc/everest/certs/client/csms/CSMS_LEAF.key","ocsp":[]}}`)
	cmd := Cmd{ID: "75390745-4e52-46cb-9fcb-b952690cbb7f", Origin: "probe"}
	for _, w := range Wires() {
		tp := w.Layout(NewTopics("", "", ""))
		_, msg, err := w.Result(tp, "get_leaf_certificate_info", cmd, retval, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[w.Name()+" result"] = msg
		if w.CarriesErrors() {
			_, msg, err = w.Result(tp, "install_ca_certificate", cmd, nil, &CmdError{Type: SchemaValidationError, Message: "bad \"certificate_type\"\n"})
			if err != nil {
				t.Fatal(err)
			}
			out[w.Name()+" error"] = msg
		}
	}
	return out
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %.80q", err, b)
	}
	return v
}

// A padded message is the message, then spaces up to the size asked (or nothing when it is
// already as long), and decodes to the same JSON value.
func TestPadResult(t *testing.T) {
	for name, msg := range paddedResults(t) {
		for _, n := range []int{0, len(msg) - 1, len(msg), len(msg) + 1, MinResultPadding, DefaultResultPadding, MaxResultPadding} {
			orig := bytes.Clone(msg)
			got, _ := padResult(msg, n)
			if want := max(len(msg), n); len(got) != want {
				t.Errorf("%s padded to %d: %d bytes, want %d", name, n, len(got), want)
			}
			if !bytes.HasPrefix(got, orig) {
				t.Errorf("%s padded to %d: the message itself changed", name, n)
			}
			if tail := got[len(orig):]; len(bytes.Trim(tail, " ")) != 0 {
				t.Errorf("%s padded to %d: padding is not spaces only", name, n)
			}
			if !reflect.DeepEqual(decodeJSON(t, got), decodeJSON(t, orig)) {
				t.Errorf("%s padded to %d decodes to another value", name, n)
			}
		}
	}
}

// The wires' own decoders read a padded message as the message: the module's own results come
// back to it on the older wires' shared topic, and evsesec's caller reads results.
func TestPadResultDecodes(t *testing.T) {
	for _, w := range Wires() {
		tp := w.Layout(NewTopics("", "", ""))
		_, msg, err := w.Result(tp, "get_leaf_expiry_days_count", Cmd{ID: "x", Origin: "probe"}, json.RawMessage("42"), nil)
		if err != nil {
			t.Fatal(err)
		}
		topic := w.ResultFilter(tp, "probe")
		want, ok, err := w.DecodeResult(tp, topic, msg)
		if err != nil || !ok {
			t.Fatalf("%s: unpadded result: %v %v", w.Name(), ok, err)
		}
		padded, _ := padResult(msg, DefaultResultPadding)
		got, ok, err := w.DecodeResult(tp, topic, padded)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: padded result read as %+v %v %v, want %+v", w.Name(), got, ok, err, want)
		}
		if w.CmdFilter(tp) != topic {
			continue // results have their own topics
		}
		if _, _, ok, err := w.DecodeCall(tp, topic, padded); ok || err != nil {
			t.Errorf("%s: its own padded result on the shared topic read as a call: %v %v", w.Name(), ok, err)
		}
	}
}

// Python's json (the everestpy modules' parser) reads a padded message as the message. The
// framework's C++ side parses with nlohmann::json, which, like both, skips whitespace after the
// document (RFC 8259 allows it around any value).
func TestPadResultPython(t *testing.T) {
	py := testtool.Require(t, "python3")
	for name, msg := range paddedResults(t) {
		padded, _ := padResult(msg, DefaultResultPadding)
		cmd := exec.Command(py, "-c", "import json,sys; d=sys.stdin.buffer.read(); print(json.dumps(json.loads(d)), len(d))")
		cmd.Stdin = bytes.NewReader(padded)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: python3 cannot read the padded message: %v", name, err)
		}
		fields := bytes.Fields(out)
		if len(fields) < 2 || string(fields[len(fields)-1]) != "65536" {
			t.Fatalf("%s: python3 read %q", name, out)
		}
		value := bytes.TrimSuffix(bytes.TrimSpace(out), []byte(" 65536"))
		if !reflect.DeepEqual(decodeJSON(t, value), decodeJSON(t, msg)) {
			t.Errorf("%s: python3 decoded %s, want the value of %s", name, value, msg)
		}
	}
}

// A reused buffer holds exactly the new message and spaces, whatever longer or shorter messages
// it held before.
func TestPaddedBufReuse(t *testing.T) {
	const n = 4096
	pb := newPaddedBuf(n)
	for _, size := range []int{0, 3000, 10, 10, 4095, 1, 2048, 0} {
		msg := bytes.Repeat([]byte{'x'}, size)
		want := append(bytes.Clone(msg), bytes.Repeat([]byte{' '}, n-size)...)
		if got := pb.pad(msg); !bytes.Equal(got, want) {
			t.Fatalf("after padding a %d-byte message: not the message and %d spaces", size, n-size)
		}
	}
	// From the pool: the same, and a buffer of another size is never handed out for n.
	for _, size := range []int{100, 4000, 5} {
		msg := bytes.Repeat([]byte{'y'}, size)
		got, pb := padResult(msg, n)
		if len(got) != n || !bytes.Equal(got[:size], msg) || strings.Trim(string(got[size:]), " ") != "" {
			t.Fatalf("pooled padding of %d bytes to %d: wrong bytes", size, n)
		}
		releasePadded(pb)
		other, pb2 := padResult(msg, n/2)
		if len(other) != max(size, n/2) {
			t.Fatalf("padding %d bytes to %d gave %d bytes", size, n/2, len(other))
		}
		releasePadded(pb2)
	}
	if got, pb := padResult(bytes.Repeat([]byte{'z'}, n), n); pb != nil || len(got) != n {
		t.Fatal("a message as long as the padding was copied")
	}
}

// BenchmarkPadResult is the module's cost of the padding itself, per result.
func BenchmarkPadResult(b *testing.B) {
	_, msg, err := V025.Result(NewTopics("", "", ""), "get_leaf_certificate_info", Cmd{ID: "x", Origin: "probe"}, json.RawMessage(`{"status":"Accepted"}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, pb := padResult(msg, DefaultResultPadding)
		releasePadded(pb)
	}
}

// trimPadding takes off exactly the whitespace after the document.
func TestTrimPadding(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"   ":                  "",
		`{"a":" "}`:            `{"a":" "}`,
		"{\"a\":\" \"} \t\r\n": `{"a":" "}`,
		" true  ":              " true",
		"{}" + strings.Repeat(" ", 20) + "\n" + strings.Repeat(" ", 17): "{}",
		"\"" + strings.Repeat(" ", 16) + "\"" + strings.Repeat(" ", 8):  "\"" + strings.Repeat(" ", 16) + "\"",
	} {
		if got := string(trimPadding([]byte(in))); got != want {
			t.Errorf("trimPadding(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkDecodeOwnPaddedResult is what a module on the older wires spends on each of its own
// padded results, which come back to it on the shared command topic.
func BenchmarkDecodeOwnPaddedResult(b *testing.B) {
	tp := V022.Layout(NewTopics("", "", ""))
	_, msg, err := V022.Result(tp, "get_leaf_expiry_days_count", Cmd{ID: "x", Origin: "probe"}, json.RawMessage("42"), nil)
	if err != nil {
		b.Fatal(err)
	}
	msg, _ = padResult(msg, DefaultResultPadding)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, err := V022.DecodeCall(tp, tp.CmdShared(), msg); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
