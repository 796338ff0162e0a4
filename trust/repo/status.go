package repo

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Status is what is about to be signed compared with what is signed.
type Status struct {
	Channel trust.Channel
	// Signed versions and expiries; zero before the first commit.
	Signed  Versions
	Expires map[string]time.Time
	Staged  []StagedRole
	// Warnings: expiries coming up, online keys without a ref.
	Warnings []string
}

// StagedRole is one staged role, its signature count and its changes.
type StagedRole struct {
	Role       string
	Version    int64
	Expires    time.Time
	Signatures Signatures
	// Changes lists, one per line, what signing this version changes.
	Changes []string
}

// Status compares the staged roles with the signed state.
func (r *Repo) Status() (Status, error) {
	s := Status{Channel: r.cfg.Channel, Signed: r.Versions(), Expires: map[string]time.Time{}}
	var prevRoot *metadata.RootType
	var prevTargets *metadata.TargetsType
	if st := r.signed; st != nil {
		prevRoot, prevTargets = &st.root().Signed, &st.targets.Signed
		s.Expires[roleRoot] = st.root().Signed.Expires
		s.Expires[roleTargets] = st.targets.Signed.Expires
		s.Expires[roleSnapshot] = st.snapshot.Signed.Expires
		s.Expires[roleTimestamp] = st.timestamp.Signed.Expires
	}
	if r.sRoot != nil {
		sr, err := r.stagedRole(roleRoot, r.sRoot.Signed.Expires, describeRoot(prevRoot, &r.sRoot.Signed))
		if err != nil {
			return s, err
		}
		s.Staged = append(s.Staged, sr)
	}
	if r.sTarget != nil {
		sr, err := r.stagedRole(roleTargets, r.sTarget.Signed.Expires, describeTargets(prevTargets, &r.sTarget.Signed))
		if err != nil {
			return s, err
		}
		s.Staged = append(s.Staged, sr)
	}
	s.Warnings = r.warnings(s.Expires)
	return s, nil
}

func (r *Repo) stagedRole(role string, expires time.Time, changes []string) (StagedRole, error) {
	sig, err := r.SignatureStatus(role)
	if err != nil {
		return StagedRole{}, err
	}
	return StagedRole{Role: role, Version: sig.Version, Expires: expires, Signatures: sig, Changes: changes}, nil
}

// warnings flags signed roles within a quarter of their policy of expiring
// (or expired), and online roles whose keys this workspace cannot load.
func (r *Repo) warnings(expires map[string]time.Time) []string {
	var w []string
	now := r.Now()
	for _, role := range topLevelRoles {
		exp, ok := expires[role]
		if !ok {
			continue
		}
		if left := exp.Sub(now); left <= 0 {
			w = append(w, fmt.Sprintf("%s expired %s", role, day(exp)))
		} else if left < r.cfg.Expiry.For(role)/4 {
			w = append(w, fmt.Sprintf("%s expires %s (in %s)", role, day(exp), Duration(left.Truncate(time.Hour))))
		}
	}
	for _, role := range []string{roleSnapshot, roleTimestamp} {
		if !slices.ContainsFunc(r.Keys(), func(k KeyInfo) bool { return k.Role == role && k.Ref != "" }) {
			w = append(w, fmt.Sprintf("no %s key with a ref in this workspace: commit and timestamp need one", role))
		}
	}
	return w
}

func day(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// describeRoot lists what root next changes relative to prev (nil: the
// first root, everything is new).
func describeRoot(prev, next *metadata.RootType) []string {
	var out []string
	if prev != nil {
		out = append(out, fmt.Sprintf("version %d → %d", prev.Version, next.Version))
		out = append(out, fmt.Sprintf("expires %s → %s", day(prev.Expires), day(next.Expires)))
	} else {
		out = append(out, fmt.Sprintf("version %d, expires %s", next.Version, day(next.Expires)))
	}
	for _, role := range topLevelRoles {
		out = append(out, describeRole(prev, next, role)...)
	}
	return out
}

func describeRole(prev, next *metadata.RootType, role string) []string {
	var out []string
	var before []string
	oldThreshold := 0
	if prev != nil {
		before, oldThreshold = prev.Roles[role].KeyIDs, prev.Roles[role].Threshold
	}
	nr := next.Roles[role]
	for _, id := range nr.KeyIDs {
		if !slices.Contains(before, id) {
			out = append(out, fmt.Sprintf("+ %s key %s (%s)", role, id, next.Keys[id].Scheme))
		}
	}
	for _, id := range before {
		if !slices.Contains(nr.KeyIDs, id) {
			out = append(out, fmt.Sprintf("- %s key %s", role, id))
		}
	}
	if oldThreshold != nr.Threshold {
		out = append(out, fmt.Sprintf("threshold %s: %d → %d of %d keys", role, oldThreshold, nr.Threshold, len(nr.KeyIDs)))
	}
	return out
}

// describeTargets lists what targets next changes relative to prev.
func describeTargets(prev, next *metadata.TargetsType) []string {
	var out []string
	oldT := map[string]*metadata.TargetFiles{}
	var oldFloors map[string]uint64
	if prev != nil {
		oldT = prev.Targets
		oldFloors, _ = trust.Floors(prev)
		out = append(out, fmt.Sprintf("version %d → %d", prev.Version, next.Version))
		out = append(out, fmt.Sprintf("expires %s → %s", day(prev.Expires), day(next.Expires)))
	} else {
		out = append(out, fmt.Sprintf("version %d, expires %s", next.Version, day(next.Expires)))
	}
	for _, name := range slices.Sorted(maps.Keys(next.Targets)) {
		if oldT[name] == nil {
			out = append(out, "+ "+describeTarget(name, next.Targets[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(oldT)) {
		if next.Targets[name] == nil {
			out = append(out, "- "+name+" (revoked)")
		}
	}
	newFloors, _ := trust.Floors(next)
	for _, k := range slices.Sorted(maps.Keys(newFloors)) {
		if oldFloors[k] != newFloors[k] {
			hw, comp, _ := trust.SplitFloorKey(k)
			out = append(out, fmt.Sprintf("floor %s on %s: %d → %d", comp, hw, oldFloors[k], newFloors[k]))
		}
	}
	return out
}

func describeTarget(name string, tf *metadata.TargetFiles) string {
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return fmt.Sprintf("%s (invalid custom fields: %v)", name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: component %s, counter %d, version %q, hardware %s, %s, sha256 %s",
		name, c.Component, c.ReleaseCounter, c.Version, strings.Join(c.HardwareIDs, ","), size(tf.Length), tf.Hashes["sha256"])
	if c.Security {
		fmt.Fprintf(&b, ", security fix %s", strings.Join(c.Advisories, ","))
	}
	if c.Encryption != "" {
		b.WriteString(", encrypted")
	}
	return b.String()
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// String renders the status for `koshin repo status`.
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "channel: %s\n", s.Channel)
	if s.Signed.Root == 0 {
		b.WriteString("signed: nothing committed yet\n")
	} else {
		fmt.Fprintf(&b, "signed: root %d (expires %s), targets %d (expires %s), snapshot %d (expires %s), timestamp %d (expires %s)\n",
			s.Signed.Root, day(s.Expires[roleRoot]), s.Signed.Targets, day(s.Expires[roleTargets]),
			s.Signed.Snapshot, day(s.Expires[roleSnapshot]), s.Signed.Timestamp, day(s.Expires[roleTimestamp]))
	}
	if len(s.Staged) == 0 {
		b.WriteString("staged: nothing\n")
	}
	for _, sr := range s.Staged {
		state := "incomplete"
		if sr.Signatures.Complete() {
			state = "ready to commit"
		}
		fmt.Fprintf(&b, "staged %s %d: %s — %s\n", sr.Role, sr.Version, sr.Signatures.summary(), state)
		for _, c := range sr.Changes {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// DescribeUnsigned summarises an exported role for the person about to sign
// it offline: role, version, expiry and its full content (every key and
// threshold of a root; every target and floor of targets).
func DescribeUnsigned(unsigned []byte) (string, error) {
	role, _, _, err := parseUnsigned(unsigned)
	if err != nil {
		return "", err
	}
	var lines []string
	if role == roleRoot {
		m, _ := parseMeta[metadata.RootType](unsigned)
		c, _ := trust.RootChannel(&m.Signed)
		lines = append([]string{fmt.Sprintf("root for channel %q", c)}, describeRoot(nil, &m.Signed)...)
	} else {
		m, _ := parseMeta[metadata.TargetsType](unsigned)
		lines = append([]string{"targets"}, describeTargets(nil, &m.Signed)...)
	}
	return strings.Join(lines, "\n") + "\n", nil
}
