// Package everest speaks the EVerest framework's MQTT wire (framework v0.25, everest-core ≥
// 2025.12): the message envelope, the topic layout, the module start-up handshake (GetConfig,
// ModuleReady), command calls and results, and variable publishing.
//
// It serves any Handler — a command name and its JSON arguments in, a JSON result out — so the
// certificate store never learns about MQTT. Three roles live here, one file each:
//
//   - wire.go and topics.go: the codec, pinned by golden tests, so an upstream wire change shows
//     up as one failing test;
//   - runner.go (with commands.go): the module runner, used both when the EVerest manager starts
//     the binary as its EvseSecurity module (RunModule) and for the standalone service (Serve);
//   - broker.go: which broker to talk to — an external one (URL, credentials, TLS) or the
//     embedded mochi-mqtt broker the standalone service starts by default.
//
// caller.go is the other end of a command call, for `evsesec call --broker` and tests.
//
// everest imports api (to map argument errors onto the framework's error types and store events
// onto certificate_store_update) and store (for the config mapping); nothing imports everest but
// the command.
package everest
