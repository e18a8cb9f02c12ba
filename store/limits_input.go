package store

// MaxInputBytes bounds a certificate, chain, CSR, OCSP response or signature handed to the
// store. The largest legitimate one is a chain of a few certificates (a few KiB); a bound far
// above that keeps a hostile megabyte-sized input from holding the store, and its write lock, for
// seconds. Oversized input gets the command's own failure code, not an error: EVerest's C++
// callers turn an error reply into an exception they do not catch.
const MaxInputBytes = 1 << 20

// tooLarge reports (and logs) an input over MaxInputBytes.
func (s *Store) tooLarge(command string, inputs ...string) bool {
	for _, in := range inputs {
		if len(in) > MaxInputBytes {
			s.log.Warn(command+" rejected: input too large", "bytes", len(in), "limit", MaxInputBytes)
			return true
		}
	}
	return false
}
