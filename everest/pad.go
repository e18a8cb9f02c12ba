package everest

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

// padResult returns msg followed by spaces up to at least n bytes; msg itself when it is already
// that long or n is zero. It may append to msg's array.
func padResult(msg []byte, n int) []byte {
	if len(msg) >= n {
		return msg
	}
	out := append(msg, make([]byte, n-len(msg))...)
	pad := out[len(msg):]
	pad[0] = ' '
	for filled := 1; filled < len(pad); filled *= 2 {
		copy(pad[filled:], pad[:filled])
	}
	return out
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
