package compliance

import (
	"fmt"
	"strings"
	"time"
)

// MaxPollInterval is the longest median check-in interval koshin accepts
// as "periodically" for EN 303 645 5.3-5; the standard's example is daily.
const MaxPollInterval = 7 * 24 * time.Hour

// Result is the outcome of one evidence row.
type Result string

const (
	ResultPass    Result = "pass"    // supports the requirement
	ResultFail    Result = "fail"    // contradicts it
	ResultInfo    Result = "info"    // observed, but proves nothing either way
	ResultMissing Result = "missing" // the data is not available
)

// outcome is what a check found. A non-empty flag is a contradiction or
// warning that the report lists prominently.
type outcome struct {
	result      Result
	observation string
	flag        string
}

func pass(obs string) outcome    { return outcome{result: ResultPass, observation: obs} }
func info(obs string) outcome    { return outcome{result: ResultInfo, observation: obs} }
func missing(obs string) outcome { return outcome{result: ResultMissing, observation: obs} }
func fail(obs, flag string) outcome {
	return outcome{result: ResultFail, observation: obs, flag: flag}
}

// factCheck judges one fleet fact, in the light of the profile where the
// two can contradict each other.
type factCheck func(p *Profile, f *FleetFacts) outcome

// factChecks are named by evidence rows' "fact".
var factChecks = map[string]factCheck{
	"devices":              checkDevices,
	"distinct_identities":  checkIdentities,
	"updates_enabled":      checkUpdatesEnabled,
	"automatic_updates":    checkAutomatic,
	"update_notifications": checkNotifications,
	"poll_schedule":        checkPollSchedule,
	"signature_rejections": checkRejections,
	"rollbacks":            counter(func(f *FleetFacts) int { return f.Rollbacks }, "automatic rollbacks after failed updates"),
	"lockouts":             counter(func(f *FleetFacts) int { return f.Lockouts }, "authentication lockouts"),
	"tamper":               checkTamper,
	"boot_integrity":       checkBootIntegrity,
	"factory_resets":       counter(func(f *FleetFacts) int { return f.FactoryResets }, "factory resets by users"),
	"credential_changes":   counter(func(f *FleetFacts) int { return f.CredentialChanges }, "changes of authentication values"),
	"patch_latency":        checkPatchLatency,
	"anomaly_alerts":       checkAnomalyAlerts,
	"network_listeners":    checkListeners,
}

func share(n, of int, what string) string {
	return fmt.Sprintf("%d of %d devices (%.1f %%) %s", n, of, 100*float64(n)/float64(of), what)
}

func checkDevices(_ *Profile, f *FleetFacts) outcome {
	if f.Devices == 0 {
		return info("no devices registered")
	}
	return pass(fmt.Sprintf("%d devices registered", f.Devices))
}

func checkIdentities(_ *Profile, f *FleetFacts) outcome {
	switch {
	case f.Devices == 0:
		return info("no devices registered")
	case f.DistinctIdentities < f.Devices:
		obs := fmt.Sprintf("%d devices share %d distinct keys", f.Devices, f.DistinctIdentities)
		return fail(obs, obs+": device identities are not unique")
	}
	return pass(fmt.Sprintf("all %d devices authenticate with distinct key pairs", f.Devices))
}

func checkUpdatesEnabled(p *Profile, f *FleetFacts) outcome {
	if f.Devices == 0 {
		return info("no devices registered")
	}
	obs := share(f.UpdatesEnabled, f.Devices, "have the update function on")
	if f.UpdatesEnabled == 0 && is(p.Updates.Mechanism) {
		return fail(obs, "the profile declares an update mechanism, but no device has updates on")
	}
	if f.UpdatesEnabled < f.Devices {
		return pass(obs + fmt.Sprintf("; users switched it off on %d", f.Devices-f.UpdatesEnabled))
	}
	return pass(obs)
}

func checkAutomatic(p *Profile, f *FleetFacts) outcome {
	return checkDefaultOn(f, f.AutomaticUpdates, is(p.Updates.Automatic), is(p.Updates.EnabledByDefault), "automatic updates")
}

func checkNotifications(p *Profile, f *FleetFacts) outcome {
	return checkDefaultOn(f, f.UpdateNotifications, is(p.Updates.Notifications), is(p.Updates.EnabledByDefault), "update notifications")
}

// checkDefaultOn compares a setting the profile says is supported and on
// by default with how many devices actually have it on.
func checkDefaultOn(f *FleetFacts, n int, supported, byDefault bool, what string) outcome {
	if f.Devices == 0 {
		return info("no devices registered")
	}
	obs := share(n, f.Devices, "have "+what+" on")
	switch {
	case n == 0 && supported && byDefault:
		return fail(obs, fmt.Sprintf("the profile declares %s on by default, but none of %d devices has them on", what, f.Devices))
	case n > 0 && !supported:
		return fail(obs, fmt.Sprintf("devices have %s on, but the profile declares the device does not support them", what))
	case n > 0:
		return pass(obs)
	}
	return info(obs)
}

func checkPollSchedule(_ *Profile, f *FleetFacts) outcome {
	iv, jt := f.PollInterval, f.PollJitter
	if iv.Samples == 0 {
		return missing("no check-in intervals reported")
	}
	obs := fmt.Sprintf("check-in interval median %s, 90th percentile %s; random jitter up to %s",
		seconds(iv.P50), seconds(iv.P90), seconds(jt.Max))
	if time.Duration(iv.P50)*time.Second > MaxPollInterval {
		return fail(obs, "half the devices check for updates less often than every "+seconds(int64(MaxPollInterval/time.Second)))
	}
	if jt.Samples == 0 || jt.Max == 0 {
		return fail(obs, "no device checks for updates at a randomised time")
	}
	return pass(obs)
}

// seconds formats a whole number of seconds in its largest exact unit.
func seconds(s int64) string {
	for _, u := range []struct {
		n    int64
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "min"}} {
		if s >= u.n && s%u.n == 0 {
			return fmt.Sprintf("%d %s", s/u.n, u.unit)
		}
	}
	return fmt.Sprintf("%d s", s)
}

func checkRejections(_ *Profile, f *FleetFacts) outcome {
	if f.SignatureRejections == 0 {
		return info(fmt.Sprintf("no refused updates reported in %d days", f.WindowDays))
	}
	return pass(fmt.Sprintf("%d refused updates reported by %d devices in %d days",
		f.SignatureRejections, f.RejectingDevices, f.WindowDays))
}

// counter is a check for an event count whose occurrence shows the
// capability working and whose absence shows nothing.
func counter(get func(*FleetFacts) int, what string) factCheck {
	return func(_ *Profile, f *FleetFacts) outcome {
		obs := fmt.Sprintf("%d %s in %d days", get(f), what, f.WindowDays)
		if get(f) == 0 {
			return info(obs)
		}
		return pass(obs)
	}
}

func checkTamper(_ *Profile, f *FleetFacts) outcome {
	if f.TamperAlerts == 0 && f.RestrictedDevices == 0 {
		return info(fmt.Sprintf("no unauthorised change detected in %d days", f.WindowDays))
	}
	return pass(fmt.Sprintf("%d tamper alerts in %d days; %d devices restricted themselves to the update server",
		f.TamperAlerts, f.WindowDays, f.RestrictedDevices))
}

func checkBootIntegrity(_ *Profile, f *FleetFacts) outcome {
	b := f.BootIntegrity
	total := b.Verified + b.Unverified + b.Failed
	if total == 0 {
		return missing("no device reports a boot-integrity result")
	}
	o := info(fmt.Sprintf("%d of %d devices report verified boot, %d unverified, %d failed", b.Verified, total, b.Unverified, b.Failed))
	if b.Verified > 0 {
		o.result = ResultPass
	}
	if b.Failed > 0 {
		o.flag = fmt.Sprintf("%d devices report a failed boot-integrity check", b.Failed)
	}
	return o
}

func checkPatchLatency(p *Profile, f *FleetFacts) outcome {
	if len(f.PatchLatency) == 0 {
		return info(fmt.Sprintf("no security advisories in %d days", f.WindowDays))
	}
	target := time.Duration(p.RemediationDays()) * 24 * time.Hour
	var parts, late []string
	for _, a := range f.PatchLatency {
		text, ok := latency(a, f.ObservedAt, target)
		parts = append(parts, text)
		if !ok {
			late = append(late, a.Advisory)
		}
	}
	obs := strings.Join(parts, "; ")
	if len(late) > 0 {
		return fail(obs, fmt.Sprintf("%s did not reach 90 %% of affected devices within the %d-day target",
			strings.Join(late, ", "), p.RemediationDays()))
	}
	return pass(obs)
}

// latency describes one advisory and reports whether it met the target.
func latency(a AdvisoryLatency, now time.Time, target time.Duration) (string, bool) {
	head := fmt.Sprintf("%s (release %s, %d devices): ", a.Advisory, a.Release, a.AffectedDevices)
	if a.HoursTo90 != nil {
		h50 := *a.HoursTo50
		text := head + fmt.Sprintf("50 %% in %.0f h, 90 %% in %.0f h", h50, *a.HoursTo90)
		return text, time.Duration(*a.HoursTo90*float64(time.Hour)) <= target
	}
	waited := now.Sub(a.ReleasedAt)
	text := head + fmt.Sprintf("90 %% not reached after %.0f h", waited.Hours())
	if a.HoursTo50 != nil {
		text += fmt.Sprintf(" (50 %% in %.0f h)", *a.HoursTo50)
	}
	return text, waited <= target
}

func checkAnomalyAlerts(_ *Profile, f *FleetFacts) outcome {
	if f.AnomalyAlerts == nil {
		return missing("the server does not report telemetry anomaly detection yet")
	}
	return pass(fmt.Sprintf("anomaly detection running: %d alerts in %d days", *f.AnomalyAlerts, f.WindowDays))
}

func checkListeners(_ *Profile, f *FleetFacts) outcome {
	switch {
	case f.NetworkListeners == nil:
		return missing("devices do not report inbound network listeners yet")
	case *f.NetworkListeners > 0:
		obs := fmt.Sprintf("%d devices have an inbound network listener open", *f.NetworkListeners)
		return fail(obs, obs)
	}
	return pass(fmt.Sprintf("none of %d devices has an inbound network listener open", f.Devices))
}
