package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/trust"
)

// Defaults for Options.
const (
	// DefaultBase is the first NV index of koshin's range, in the owner
	// range 0x01800000–0x01BFFFFF of the TCG handle registry ("K" = 0x4B).
	DefaultBase tpm2.TPMHandle = 0x01804B00
	// DefaultSlots is how many components the range holds (two indices each).
	DefaultSlots = 16
	// DefaultMaxIncrements bounds one Advance.
	DefaultMaxIncrements = 1024
)

// ErrJump: Advance was asked to climb more steps than MaxIncrements allows;
// nothing was incremented.
var ErrJump = errors.New("tpm: release counter jump too large for the NV counter")

// Options configure a Counter. Zero values take the defaults.
type Options struct {
	// Base is the first NV index; the counter uses 2*Slots indices from it.
	Base tpm2.TPMHandle
	// Slots is the number of components the range holds.
	Slots int
	// OwnerAuth is the owner hierarchy's authorisation value, used only to
	// define a component's indices the first time its counter advances.
	OwnerAuth []byte
	// MaxIncrements is the largest number of NV_Increment steps one
	// Advance may take.
	MaxIncrements uint64
	// Sleep waits between retries of a command the TPM asked to repeat
	// (time.Sleep if nil).
	Sleep func(time.Duration)
}

// Counter is an agent.Counter kept in TPM NV counters. It is safe for
// concurrent use; it does not own the transport (close that yourself).
type Counter struct {
	tpm     transport.TPM
	opts    Options
	sleep   func(time.Duration)
	retries atomic.Uint64

	mu    sync.Mutex
	slots map[string]int // component → slot, once its record is found
}

var _ agent.Counter = (*Counter)(nil)

// New returns a Counter on t. It sends no command until first used.
func New(t transport.TPM, o Options) (*Counter, error) {
	if o.Base == 0 {
		o.Base = DefaultBase
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.MaxIncrements == 0 {
		o.MaxIncrements = DefaultMaxIncrements
	}
	last := uint32(o.Base) + 2*uint32(o.Slots) - 1
	if o.Slots < 0 || o.Slots > 1<<16 || uint32(o.Base)>>24 != uint32(tpm2.TPMHTNVIndex) || last>>24 != uint32(tpm2.TPMHTNVIndex) {
		return nil, fmt.Errorf("tpm: NV range %#x + %d slots is not in the NV index handle range", uint32(o.Base), o.Slots)
	}
	c := &Counter{tpm: t, opts: o, sleep: o.Sleep, slots: map[string]int{}}
	if c.sleep == nil {
		c.sleep = time.Sleep
	}
	return c, nil
}

// Retries returns how many times a command was repeated because the TPM
// asked for it.
func (c *Counter) Retries() uint64 { return c.retries.Load() }

// Get returns component's counter: 0 if it has no slot yet.
func (c *Counter) Get(component string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.find(component)
	if err != nil || s == nil {
		return 0, err
	}
	return s.value(c)
}

// Advance raises component's counter to n, one NV_Increment at a time; an
// equal or lower n is a no-op. A jump of more than MaxIncrements steps is
// ErrJump, with nothing incremented.
func (c *Counter) Advance(component string, n uint64) error {
	if err := trust.ValidateID("component", component); err != nil {
		return err
	}
	if n > trust.MaxReleaseCounter {
		return fmt.Errorf("%w: counter %d out of range", trust.ErrInvalid, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.find(component)
	if err != nil {
		return err
	}
	if s == nil {
		if n == 0 {
			return nil
		}
		// A component's first value is set directly: from 0 to n is an
		// advance like any other, and it lets a device take up its TPM
		// counter at whatever release it runs.
		if s, err = c.provision(component, n); err != nil {
			return err
		}
	}
	cur, err := s.value(c)
	if err != nil || cur >= n {
		return err
	}
	if n-cur > c.opts.MaxIncrements {
		return fmt.Errorf("%w: %s from %d to %d is %d steps, more than %d", ErrJump, component, cur, n, n-cur, c.opts.MaxIncrements)
	}
	for range n - cur {
		if err := c.increment(s.counter); err != nil {
			return fmt.Errorf("advance %s counter: %w", component, err)
		}
	}
	got, err := s.value(c)
	if err != nil {
		return err
	}
	if got < n {
		return fmt.Errorf("%w: %s counter reads %d after advancing to %d", agent.ErrCorruptCounter, component, got, n)
	}
	return nil
}

// slot is one component's pair of indices, checked, and its record: the
// hardware counter read base when the component's value was start.
type slot struct {
	i           int
	record      index
	counter     index
	base, start uint64
}

func (s *slot) value(c *Counter) (uint64, error) {
	raw, err := c.readUint64(s.counter)
	if err != nil {
		return 0, err
	}
	if raw < s.base || raw-s.base > trust.MaxReleaseCounter-s.start {
		return 0, fmt.Errorf("%w: NV counter %#x reads %d, outside its record (base %d, start %d)", agent.ErrCorruptCounter, uint32(s.counter.handle), raw, s.base, s.start)
	}
	return s.start + raw - s.base, nil
}

func (c *Counter) handles(i int) (record, counter tpm2.TPMHandle) {
	return c.opts.Base + tpm2.TPMHandle(2*i), c.opts.Base + tpm2.TPMHandle(2*i+1)
}

// find returns component's slot, or nil if it has none. Slots are taken in
// order, so the search stops at the first slot never defined.
func (c *Counter) find(component string) (*slot, error) {
	if i, ok := c.slots[component]; ok {
		s, st, err := c.load(i, component)
		if err != nil {
			return nil, err
		}
		if st != slotMatch {
			return nil, fmt.Errorf("%w: the record of %s in NV slot %d changed", agent.ErrCorruptCounter, component, i)
		}
		return s, nil
	}
	for i := range c.opts.Slots {
		s, st, err := c.load(i, component)
		if err != nil {
			return nil, err
		}
		switch st {
		case slotMatch:
			c.slots[component] = i
			return s, nil
		case slotFree:
			return nil, nil
		}
	}
	return nil, nil
}

type slotState int

const (
	slotFree       slotState = iota // neither index defined
	slotUnfinished                  // record defined but not yet written: provisioning was cut
	slotOther                       // record names another component
	slotMatch                       // record names the component
)

// load reads slot i and classifies it for component, checking everything
// that is there.
func (c *Counter) load(i int, component string) (*slot, slotState, error) {
	rh, ch := c.handles(i)
	rec, err := c.readPublic(rh)
	if err != nil {
		return nil, 0, err
	}
	cnt, err := c.readPublic(ch)
	if err != nil {
		return nil, 0, err
	}
	s := &slot{i: i, record: rec, counter: cnt}
	if err := checkPublic(rec, recordTemplate(rh)); err != nil {
		return nil, 0, err
	}
	if err := checkPublic(cnt, counterTemplate(ch)); err != nil {
		return nil, 0, err
	}
	switch {
	case !rec.defined && !cnt.defined:
		return s, slotFree, nil
	case !rec.defined:
		// Provisioning defines the record first; a counter without one was
		// tampered with (or defined by someone else in koshin's range).
		return nil, 0, fmt.Errorf("%w: NV counter %#x has no record", agent.ErrCorruptCounter, uint32(ch))
	case !rec.pub.Attributes.Written:
		return s, slotUnfinished, nil
	}
	b, err := c.read(rec)
	if err != nil {
		return nil, 0, err
	}
	base, start, sum, ok := parseRecord(b)
	if !ok {
		return nil, 0, fmt.Errorf("%w: NV record %#x is not koshin's", agent.ErrCorruptCounter, uint32(rh))
	}
	if wanted := sha256.Sum256([]byte(component)); sum != wanted {
		return s, slotOther, nil
	}
	if !cnt.defined || !cnt.pub.Attributes.Written {
		return nil, 0, fmt.Errorf("%w: NV counter %#x of %s is missing or was never incremented", agent.ErrCorruptCounter, uint32(ch), component)
	}
	if !rec.pub.Attributes.WriteLocked {
		// Cut between writing the record and locking it: finish.
		if err := c.writeLock(rec); err != nil {
			return nil, 0, err
		}
		if s.record, err = c.readPublic(rh); err != nil {
			return nil, 0, err
		}
	}
	s.base, s.start = base, start
	return s, slotMatch, nil
}

// provision takes the first free or unfinished slot for component, whose
// value starts at start: define the record, define the counter, increment
// it once (it starts wherever the TPM says), write the value it reached and
// start into the record, lock the record. Each step is checked on the next
// load, so a power cut anywhere resumes; no Advance happens on a slot before
// its record is written, so an unfinished slot holds no committed counter
// and any component may take it, at any start.
func (c *Counter) provision(component string, start uint64) (*slot, error) {
	for i := range c.opts.Slots {
		s, st, err := c.load(i, component)
		if err != nil {
			return nil, err
		}
		if st != slotFree && st != slotUnfinished {
			continue
		}
		rh, ch := c.handles(i)
		if !s.record.defined {
			if err := c.define(recordTemplate(rh)); err != nil {
				return nil, err
			}
		}
		if !s.counter.defined {
			if err := c.define(counterTemplate(ch)); err != nil {
				return nil, err
			}
		}
		if s.counter, err = c.readPublic(ch); err != nil {
			return nil, err
		}
		if !s.counter.pub.Attributes.Written {
			if err := c.increment(s.counter); err != nil {
				return nil, err
			}
			if s.counter, err = c.readPublic(ch); err != nil {
				return nil, err
			}
		}
		base, err := c.readUint64(s.counter)
		if err != nil {
			return nil, err
		}
		if s.record, err = c.readPublic(rh); err != nil {
			return nil, err
		}
		if err := c.write(s.record, record(base, start, component)); err != nil {
			return nil, err
		}
		s, st, err = c.load(i, component) // locks the record and checks it all
		if err != nil {
			return nil, err
		}
		if st != slotMatch {
			return nil, fmt.Errorf("%w: NV slot %d did not take %s", agent.ErrCorruptCounter, i, component)
		}
		c.slots[component] = i
		return s, nil
	}
	return nil, fmt.Errorf("tpm: all %d NV counter slots from %#x are taken", c.opts.Slots, uint32(c.opts.Base))
}

const recordSize = 56

var recordMagic = []byte("koshinC1")

func record(base, start uint64, component string) []byte {
	b := make([]byte, 0, recordSize)
	b = append(b, recordMagic...)
	b = binary.BigEndian.AppendUint64(b, base)
	b = binary.BigEndian.AppendUint64(b, start)
	sum := sha256.Sum256([]byte(component))
	return append(b, sum[:]...)
}

func parseRecord(b []byte) (base, start uint64, sum [32]byte, ok bool) {
	if len(b) != recordSize || !bytes.Equal(b[:8], recordMagic) {
		return 0, 0, sum, false
	}
	start = binary.BigEndian.Uint64(b[16:24])
	if start > trust.MaxReleaseCounter {
		return 0, 0, sum, false
	}
	copy(sum[:], b[24:])
	return binary.BigEndian.Uint64(b[8:16]), start, sum, true
}

// recordTemplate: an ordinary index written in one piece, then locked until
// deleted (WRITEDEFINE); read and written with its own empty authValue.
func recordTemplate(h tpm2.TPMHandle) tpm2.TPMSNVPublic {
	return tpm2.TPMSNVPublic{NVIndex: h, NameAlg: tpm2.TPMAlgSHA256, DataSize: recordSize,
		Attributes: tpm2.TPMANV{NT: tpm2.TPMNTOrdinary, AuthWrite: true, AuthRead: true,
			WriteAll: true, WriteDefine: true, NoDA: true}}
}

// counterTemplate: a monotonic counter, not ORDERLY, so every increment is
// in NV before the command returns.
func counterTemplate(h tpm2.TPMHandle) tpm2.TPMSNVPublic {
	return tpm2.TPMSNVPublic{NVIndex: h, NameAlg: tpm2.TPMAlgSHA256, DataSize: 8,
		Attributes: tpm2.TPMANV{NT: tpm2.TPMNTCounter, AuthWrite: true, AuthRead: true, NoDA: true}}
}

// checkPublic accepts an undefined index or one defined exactly as want,
// apart from the state bits the TPM sets (written, locked).
func checkPublic(ix index, want tpm2.TPMSNVPublic) error {
	if !ix.defined {
		return nil
	}
	a := ix.pub.Attributes
	a.Written, a.WriteLocked, a.ReadLocked = false, false, false
	if a != want.Attributes || ix.pub.NameAlg != want.NameAlg || ix.pub.DataSize != want.DataSize || len(ix.pub.AuthPolicy.Buffer) != 0 {
		return fmt.Errorf("%w: NV index %#x is not defined as koshin defines it", agent.ErrCorruptCounter, uint32(ix.handle))
	}
	return nil
}
