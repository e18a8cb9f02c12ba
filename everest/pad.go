package everest

import "sync"

// Result padding (Options.PadResults), an opt-in for brokers that leave Nagle's algorithm on.
//
// mosquitto in its default configuration (set_tcp_nodelay false) sends the PUBCOMP of a QoS 2
// call to the caller, and the caller's kernel delays its ACK (40 ms on Linux): it has nothing to
// send back. The module's result reaches the broker about a millisecond later, and Nagle holds it
// on the broker's socket to the caller until that ACK, so every call takes about 44 ms. Nagle
// never holds back a full-sized segment, and a receiver acknowledges at once when more than one
// full segment is unacknowledged: a result larger than the broker's segment size towards the
// caller (65,483 bytes on loopback, whose MTU is 64 KiB; about 1,448 over Ethernet) leaves at
// once. The module can change nothing else on that connection, which is the broker's.
//
// The padding is JSON whitespace after the complete JSON document of the result message, which
// every JSON parser the framework's callers use skips (nlohmann::json, Python's json, Go's). It
// costs what it says: every result carries the padding to the broker and to every subscriber of
// its topic, which parses it. set_tcp_nodelay true in mosquitto.conf, or the broker's Unix
// socket, removes the wait without it.

// Bounds of Options.PadResults.
const (
	// DefaultResultPadding is the size results are padded to when padding is merely switched on:
	// 64 KiB, so that a result is larger than one segment on loopback, where the module and the
	// broker of an EVerest installation talk, and by far on any other link.
	DefaultResultPadding = 64 << 10
	// MaxResultPadding is the largest padding accepted. Framework v0.17 to v0.24 receive MQTT
	// with MQTT-C into a buffer of 500 KiB per client; a message that does not fit ends the
	// caller's connection. 256 KiB stays well below it, and a hundred times above any segment.
	MaxResultPadding = 256 << 10
	// MinResultPadding is the smallest padding that can make a result larger than a TCP
	// segment (Ethernet's MTU); a smaller one would cost bytes and change nothing.
	MinResultPadding = 1500
)

// fillSpaces sets every byte of b to a space, doubling what it copies.
func fillSpaces(b []byte) {
	if len(b) == 0 {
		return
	}
	b[0] = ' '
	for filled := 1; filled < len(b); filled *= 2 {
		copy(b[filled:], b[:filled])
	}
}

// paddedBuf is a padded result's buffer that goes back to paddedBufs once the broker has taken
// the result. Every byte from dirty on is a space, so reusing it costs copying the message and
// blanking what the previous message left beyond it, not 64 KiB of allocating, zeroing and
// filling per result: that allocation per call made the module's garbage collector run every
// few dozen calls.
type paddedBuf struct {
	b     []byte
	dirty int
}

var paddedBufs sync.Pool

// padResult returns msg followed by spaces up to at least n bytes, in a reused buffer;
// msg itself, and no buffer, when it is already that long or n is zero. The caller hands the
// buffer to releasePadded once nothing refers to the padded message any more (paho has had the
// PUBCOMP), or drops it when that is not known.
func padResult(msg []byte, n int) ([]byte, *paddedBuf) {
	if len(msg) >= n {
		return msg, nil
	}
	pb, _ := paddedBufs.Get().(*paddedBuf)
	if pb == nil || len(pb.b) != n {
		pb = newPaddedBuf(n)
	}
	return pb.pad(msg), pb
}

// newPaddedBuf returns a buffer of n spaces.
func newPaddedBuf(n int) *paddedBuf {
	pb := &paddedBuf{b: make([]byte, n)}
	fillSpaces(pb.b)
	return pb
}

// pad writes msg (shorter than the buffer) at the start of the buffer, blanks what an earlier
// message left beyond it, and returns the whole buffer.
func (pb *paddedBuf) pad(msg []byte) []byte {
	copy(pb.b, msg)
	if pb.dirty > len(msg) {
		fillSpaces(pb.b[len(msg):pb.dirty])
	}
	pb.dirty = len(msg)
	return pb.b
}

// releasePadded returns pb (nil: nothing) for reuse.
func releasePadded(pb *paddedBuf) {
	if pb != nil {
		paddedBufs.Put(pb)
	}
}

// trimPadding returns b without the whitespace after its JSON document. encoding/json scans
// trailing whitespace at some 5 ns a byte; a module on the older wires receives each of its own
// padded results back on the shared command topic, and this keeps it from scanning 64 KiB of
// spaces for every result it sent.
func trimPadding(b []byte) []byte {
	n := len(b)
	for n >= 8 && string(b[n-8:n]) == "        " { // the padding: eight spaces at a time
		n -= 8
	}
	for n > 0 {
		switch b[n-1] {
		case ' ', '\t', '\n', '\r':
			n--
			continue
		}
		break
	}
	return b[:n]
}

// warnPaddingOnSharedTopic says, when results are padded on a wire of framework v0.17 to v0.24,
// what the padding does not do there: those callers subscribe to the shared command topic before
// every call, and the broker's answer to the call then waits behind its SUBACK for the caller's
// delayed ACK, before the module has seen the call. Padding halves such a call (88 to 44 ms in
// the median); only the broker's side removes the wait. And every module that uses
// evse_security receives every padded result there.
func (r *Runner) warnPaddingOnSharedTopic() {
	if _, legacy := r.Wire().(legacyWire); !legacy || r.opts.PadResults == 0 {
		return
	}
	r.log.Warn("result padding on a framework older than v0.25 removes only one of a call's two waits under Nagle",
		"wire", r.Wire().Name(),
		"why", "the caller subscribes before every call, and the broker's PUBREC then waits behind its SUBACK for the caller's delayed ACK (about 40 ms); the module never sees that exchange",
		"cost", "every module that uses evse_security receives every padded result on the shared command topic",
		"fix", "set_tcp_nodelay true in mosquitto.conf, or the broker's Unix socket")
}
