package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// IntegrityConfig configures the detection of unauthorised changes
// (EN 303 645 5.7-2). The boot-integrity hook (Config.BootIntegrity) and
// the anti-rollback counter's own check are always consulted.
type IntegrityConfig struct {
	// SlotCheck hashes the booted slot and compares it with the image the
	// agent committed there, or with the factory image (Config.Factory with
	// SHA256 and Length) before the first commit. It assumes raw-image
	// slots mounted read-only: a file system mounted read-write changes its
	// own bytes, and the check would report that as tampering.
	SlotCheck bool
	// SlotCheckEvery repeats the slot check while Run runs; 0 checks once
	// at start-up.
	SlotCheckEvery time.Duration
	// SlotCheckRate bounds how fast the slot is read, in bytes per second,
	// so the check does not starve the device's own I/O; 0 reads as fast
	// as the storage allows.
	SlotCheckRate int64
	// SlotCheckMax skips the check for images longer than this many bytes
	// (huge slots on slow storage); 0 checks any size.
	SlotCheckMax int64
	// Trusted checks the trust core's metadata directory (the trusted roots
	// verify and match the device's channel); an error is an unauthorised
	// change. Nil skips it.
	Trusted func() error
	// Key, if set, MACs the integrity record (HMAC-SHA256), like
	// FileCounter.Key; without it a plain hash detects corruption only.
	Key []byte
	// OnAlert, if set, is called for each new finding once it is persisted
	// (to alert the device's user, e.g. through the notify command). It
	// must not block.
	OnAlert func(Finding)
	// Sleep paces the slot check and waits between scheduled checks
	// (default: a timer). It is separate from Config.Sleep, which the
	// local control API may cut short to poll at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *IntegrityConfig) check() error {
	if c.SlotCheckEvery < 0 || c.SlotCheckRate < 0 || c.SlotCheckMax < 0 {
		return errors.New("agent: integrity check settings must not be negative")
	}
	return nil
}

// inspect runs the checks that cost next to nothing — boot-integrity hook,
// anti-rollback counter, trusted metadata, booted slot — at start-up and
// before every check-in, raises what they find, and queues reports a power
// cut left in the integrity record. It runs inside Exclusive.
func (e *Engine) inspect() error {
	var found []Finding
	if e.cfg.BootIntegrity() == "failed" {
		found = append(found, Finding{Reason: TamperBootIntegrity, Detail: "the secure/measured-boot hook reports a boot chain that failed verification"})
	}
	if err := e.counterIntact(); err != nil {
		found = append(found, Finding{Reason: TamperCounter, Detail: err.Error()})
	}
	if check := e.cfg.Integrity.Trusted; check != nil {
		if err := check(); err != nil {
			found = append(found, Finding{Reason: TamperTrustedMetadata, Detail: err.Error()})
		}
	}
	bs, err := e.cfg.Bootloader.State()
	if err != nil {
		return fmt.Errorf("bootloader state: %w", err)
	}
	if detail, ok := e.switchedSlot(bs); ok {
		found = append(found, Finding{Reason: TamperSlotSwitched, Detail: detail})
	}
	return e.raise(found...)
}

// counterIntact reads every component's counter; only an integrity failure
// counts (a TPM that does not answer is not tampering).
func (e *Engine) counterIntact() error {
	for _, c := range e.components() {
		if _, err := e.cfg.Counter.Get(c.Name); errors.Is(err, ErrCorruptCounter) {
			return err
		}
	}
	return nil
}

// switching reports whether a transaction has switched, or is switching,
// the bootloader: the booted slot is then the transaction's business.
func (e *Engine) switching() bool {
	tx := e.j.Tx
	return e.pendingReboot || tx != nil && tx.Slot != "" && !tx.State.Terminal() &&
		tx.State != StateDownloading && tx.State != StateVerifying
}

// switchedSlot: with no update in flight, the device must run the slot the
// agent last committed. Anything else was booted by someone else — by hand
// or by an edited bootloader environment — typically to run an older image.
func (e *Engine) switchedSlot(bs BootState) (string, bool) {
	committed := e.integ.get().Committed
	if committed == "" || bs.Booted == "" || e.switching() || bs.Trial || bs.Booted == committed {
		return "", false
	}
	return fmt.Sprintf("booted slot %s, but the agent last committed slot %s", bs.Booted, committed), true
}

// slotCheck is one slot check: which slot, and what it must hold.
type slotCheck struct {
	Slot  string
	Image SlotImage
}

// CheckSlot hashes the booted slot and compares it with what the agent
// committed there (or the factory image), raising a slot-content alert on
// any difference. It reads outside the engine's lock, at most
// Integrity.SlotCheckRate bytes per second, so that updates and the local
// control API are not held up; a commit that changes the reference while
// it reads makes it drop its result. It does nothing unless
// Integrity.SlotCheck is set, during a trial boot, or when the booted slot
// has no known image (a device whose agent predates the check, a factory
// image without a length). Read errors are returned, not raised: failing
// storage is not tampering.
func (e *Engine) CheckSlot(ctx context.Context) error {
	var want slotCheck
	var ok bool
	err := e.Exclusive(ctx, func() (err error) {
		want, ok, err = e.slotToCheck()
		return err
	})
	if err != nil || !ok {
		return err
	}
	sum, n, err := e.hashSlot(ctx, want)
	if err != nil {
		return fmt.Errorf("check slot %s: %w", want.Slot, err)
	}
	return e.Exclusive(ctx, func() error {
		now, still, err := e.slotToCheck()
		if err != nil || !still || now != want {
			return err
		}
		if n == want.Image.Length && sum == want.Image.SHA256 {
			e.cfg.Log.Info("booted slot matches the committed image", "slot", want.Slot, "target", want.Image.Target)
			return nil
		}
		return e.raise(Finding{Reason: TamperSlotContent, Detail: fmt.Sprintf(
			"slot %s holds %d bytes hashing to %.16s…; the agent committed %s there (%d bytes, %.16s…)",
			want.Slot, n, sum, want.Image.Target, want.Image.Length, want.Image.SHA256)})
	})
}

// slotToCheck says which slot to check now and against what.
func (e *Engine) slotToCheck() (slotCheck, bool, error) {
	if !e.cfg.Integrity.SlotCheck || e.switching() {
		return slotCheck{}, false, nil
	}
	bs, err := e.cfg.Bootloader.State()
	if err != nil {
		return slotCheck{}, false, fmt.Errorf("bootloader state: %w", err)
	}
	if bs.Trial || bs.Booted == "" {
		return slotCheck{}, false, nil
	}
	img, ok := e.integ.get().Slots[bs.Booted]
	if !ok {
		img, ok = e.factoryImage()
	}
	if !ok {
		e.cfg.Log.Debug("no reference image for the booted slot; slot check skipped", "slot", bs.Booted)
		return slotCheck{}, false, nil
	}
	if max := e.cfg.Integrity.SlotCheckMax; max > 0 && img.Length > max {
		e.cfg.Log.Info("image longer than the slot check's limit; not checked", "slot", bs.Booted, "length", img.Length, "limit", max)
		return slotCheck{}, false, nil
	}
	return slotCheck{Slot: bs.Booted, Image: img}, true, nil
}

// factoryImage is the reference for a slot the agent never committed to:
// the factory image of the A/B component, as long as the agent has not
// committed an update of that component (after one, a slot without a
// record holds what an older agent wrote, which has no reference).
func (e *Engine) factoryImage() (SlotImage, bool) {
	for _, name := range slices.Sorted(maps.Keys(e.cfg.Installers)) {
		if !e.cfg.Installers[name].Reboots() {
			continue
		}
		if _, committed := e.j.Installed[name]; committed {
			continue
		}
		f, ok := e.cfg.Factory[name]
		if !ok || f.Length <= 0 || validHex("sha256", f.SHA256) != nil {
			continue
		}
		return SlotImage{Component: name, Target: f.Target, Length: f.Length, SHA256: f.SHA256}, true
	}
	return SlotImage{}, false
}

// slotCheckChunk is the most the slot check reads between pauses; at low
// rates it reads an eighth of a second's worth, at least 4 KiB.
const slotCheckChunk = 256 << 10

func (c *IntegrityConfig) chunk() int {
	if c.SlotCheckRate <= 0 {
		return slotCheckChunk
	}
	return int(min(slotCheckChunk, max(4<<10, c.SlotCheckRate/8)))
}

// hashSlot returns the SHA-256 and length of the first c.Image.Length
// bytes of slot c.Slot, read at the configured rate.
func (e *Engine) hashSlot(ctx context.Context, c slotCheck) (string, int64, error) {
	s, err := e.cfg.Slots.Slot(c.Slot)
	if err != nil {
		return "", 0, err
	}
	rc, err := s.Reader()
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	p := pacer{rate: e.cfg.Integrity.SlotCheckRate, now: e.cfg.Now, sleep: e.cfg.Integrity.Sleep, start: e.cfg.Now()}
	r := io.LimitReader(rc, c.Image.Length)
	buf := make([]byte, e.cfg.Integrity.chunk())
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		k, err := io.ReadFull(r, buf)
		h.Write(buf[:k])
		n += int64(k)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return "", n, err
		}
		if err := p.wait(ctx, n); err != nil {
			return "", n, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// pacer keeps a reader at rate bytes per second on average.
type pacer struct {
	rate  int64
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	start time.Time
}

// wait pauses until n bytes are due at the rate.
func (p *pacer) wait(ctx context.Context, n int64) error {
	if p.rate <= 0 {
		return nil
	}
	due := p.start.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	if d := due.Sub(p.now()); d > 0 {
		return p.sleep(ctx, d)
	}
	return nil
}

// slotChecks runs CheckSlot now and then every SlotCheckEvery until ctx
// ends.
func (e *Engine) slotChecks(ctx context.Context) {
	for {
		if err := e.CheckSlot(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Log.Warn("slot check failed", "err", err)
		}
		every := e.cfg.Integrity.SlotCheckEvery
		if every <= 0 || e.cfg.Integrity.Sleep(ctx, every) != nil {
			return
		}
	}
}
