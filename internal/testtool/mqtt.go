package testtool

// MQTTRemainingLength appends n in MQTT's variable-length encoding (seven bits a byte, least
// significant first, the top bit set while more follow) to dst: the remaining length of a fixed
// header, for tests that write raw MQTT packets.
func MQTTRemainingLength(dst []byte, n int) []byte {
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}
