// Package anomaly examines the fleet's telemetry for security anomalies
// (EN 303 645 5.10-1, CCDS UPD06): sudden rises in
//
//   - updates devices refused as invalid (rejected-invalid-update events:
//     someone may be serving forged or replayed updates),
//   - authentication lockouts on devices (brute force against their local
//     interface),
//   - unknown versions (a device reports a component that no imported
//     release explains: tampering, a rogue build, a leaked signing key),
//   - retry storms (device requests the server refused with 429 or 503:
//     a misbehaving agent release or a flood).
//
// Each signal is counted per hardware ID, per device group and for the
// whole fleet, in buckets of Config.Bucket. A Detector tick compares the
// count of the last Config.Window with the trailing baseline (the average
// count per window over Config.Baseline before it) and raises an alert when
// the count reaches max(Floor, Factor × baseline): a spike against a quiet
// history, or a multiple of a busy one. A raised alert stays active until
// the window's count falls below its threshold again; it is raised at most
// once per window, however long the spike lasts within it.
//
// Alerts go to three places: Prometheus metrics, the administrators'
// webhook (a rollout.Notification of kind KindAlert, then KindCleared),
// and the audit log, where they survive restarts and are the same on every
// server replica. ListAlerts reads them back for the web UI and the
// management API, CountAlerts for the compliance report's fleet facts.
//
// The Detector reads only the store (events, the fleet-wide report feed,
// releases), except retry storms, which come from the server's own
// counters; with several replicas the detector runs on one of them (a
// background job under the store's lock), which sees its own share of the
// refused requests. Time is injected: Tick takes its instant from Now.
package anomaly
