package everest

import "time"

// SetRetainedWait sets how long r waits for the manager's retained topics before its first
// config request (detect.go). A test in which they do come sets a bound long enough that it can
// never decide which requests are sent; the production bound (1.5 s) is a trade-off that a busy
// machine can cross.
func SetRetainedWait(r *Runner, d time.Duration) { r.retainedWait = d }
