// Package everest speaks the EVerest framework's MQTT wire, in each generation since framework
// v0.17 (everest-core 2024.9): the topic layout, the module start-up handshake (config, ready),
// command calls and results, and variable publishing.
//
// It serves any Handler — a command name and its JSON arguments in, a JSON result out — so the
// certificate store never learns about MQTT, and this package knows no store: it is the wire and
// nothing else. The roles, one or two files each:
//
//   - wires.go: the Wire interface, one implementation per framework generation, and the v0.25
//     one (with wire.go, the envelope codec); wire_legacy.go: the un-enveloped wires of v0.17 to
//     v0.24; config.go and config_legacy.go: the config each generation's manager sends, or the
//     EVerest config file a v0.17/v0.18 module reads itself. All pinned by golden tests, so an
//     upstream wire change shows up as one failing test;
//   - detect.go: how a module started by a manager finds out which wire it speaks;
//   - runner.go (with commands.go): the module runner, used both when the EVerest manager starts
//     the binary as its EvseSecurity module (RunModule) and for the standalone service (Serve);
//   - broker.go: which broker to talk to — an external one (URL, credentials, TLS) or the
//     embedded mochi-mqtt broker the standalone service starts by default.
//
// caller.go is the other end of a command call, for `evsesec call --broker` and tests.
//
// everest imports neither api nor store: the binary (cmd/evsesec) puts the wire, the api
// package's dispatcher and the store together.
package everest
