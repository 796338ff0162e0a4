// Package sim is koshin's fleet simulator: many devices in one process,
// each running the real device agent against a real server, so operators
// can rehearse rollouts and outages before touching real devices and so
// capacity figures come from the code that ships (CCDS UPD01, UPD02,
// UPD06; EN 303 645 5.9-3, 5.10-1).
//
// # What each simulated device is
//
// Every device is the agent's update engine (package agent) with:
//
//   - its own Ed25519 key, derived from the fleet seed and its index, and
//     a certificate from the server's device CA, obtained by enrolling
//     with a one-time token or a factory pre-authorisation (PreauthCSV
//     lists the keys for upload);
//   - the real device API client (deviceapi.Client) over mutual TLS,
//     pinned to the server CA;
//   - the real trust-core verifier (trust/verify), provisioned with the
//     image and director roots, persisting its metadata per device;
//   - agenttest's simulated board: a U-Boot-style bootloader with boot
//     counting, two slot files, a state directory, and an Injector through
//     which every write passes, so power can be cut at any write point.
//
// The simulator drives Engine.Start and Engine.Poll itself rather than
// Engine.Run, so that it can compress time (--poll), wake a whole fleet at
// once after an outage, and reboot or power-cycle devices; the scheduling
// rules are the agent's: first check-in after a random delay, then the
// server's interval with jitter, and full-jitter exponential back-off on
// errors that never waits less than the server's Retry-After.
//
// # Scenarios
//
// A Scenario switches on faults, each at a share of the fleet chosen by a
// seeded permutation so that runs are reproducible: new images that fail
// their health check (the engine rolls back) or never come up (the
// bootloader falls back); power cuts at random write points; slow or
// dropping links; a rogue mirror that flips a byte of every payload;
// an outage after which all devices reconnect at once; and users who
// postpone or decline updates offered in consent mode.
//
// # What it measures
//
// Run returns a Summary: devices per state and per installed release,
// rollbacks, rejected updates, resumed installs, power cuts, bricked
// devices (must be 0: checked at the end by booting every device and
// hashing its booted slot), HTTP errors by kind, and check-in latency
// percentiles, overall and during a reconnect storm.
//
// # Memory
//
// Device directories go to /dev/shm when it exists. Per device the
// simulator keeps its engine, verifier and a transport whose connections
// are closed after each poll (a device that polls hourly holds none), so
// a fleet of thousands fits in one process; the fleet shares read-only
// data (factory record, server CA pool). Devices on a loopback server
// connect from distinct 127.x.y.z source addresses where the system
// allows it, as distinct devices would, which also keeps one process
// from running out of ephemeral ports.
package sim
