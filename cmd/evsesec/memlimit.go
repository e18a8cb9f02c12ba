package main

import (
	"os"
	"runtime/debug"
)

// serviceMemoryLimit is the Go runtime's soft memory limit of the long-running service (serve,
// module mode) unless GOMEMLIMIT says otherwise. Without it the collector lets the heap grow to
// twice what is live before it runs, so a burst of large MQTT messages (each up to
// everest.MaxMessageBytes, copied a few times on its way to the store) would leave the process
// with several times the memory it needs; with it the collector runs earlier as the limit nears.
// The service's own data is far below it (a 2,000-leaf store peaks at about 50 MiB); a store
// whose live data exceeds it still works, the collector just runs more often.
const serviceMemoryLimit = 128 << 20

// setServiceMemoryLimit applies serviceMemoryLimit when the environment sets no limit.
func setServiceMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serviceMemoryLimit)
	}
}
