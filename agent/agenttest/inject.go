package agenttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
)

// ErrPowerCut is returned by every operation of a simulated device from the
// cut on, until Revive.
var ErrPowerCut = errors.New("agenttest: power cut")

// Volatile is state that a power cut may partly lose (a page cache).
type Volatile interface {
	// PowerLoss keeps a random part of the unsynced data and drops the
	// rest.
	PowerLoss(rng *rand.Rand)
	// Flush makes all unsynced data durable (a clean reboot).
	Flush() error
}

// Injector counts write points and cuts power at a chosen one.
type Injector struct {
	mu       sync.Mutex
	rng      *rand.Rand
	n        int // points passed since creation
	cutAt    int // -1: none
	dead     bool
	cuts     int
	names    []string
	volatile []Volatile
}

// NewInjector returns an injector that never cuts; rng drives the partial
// writes of a cut.
func NewInjector(seed uint64) *Injector {
	return &Injector{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cutAt: -1}
}

// CutAt arms a cut at the n-th point from now on, counted over the whole
// life of the injector (0-based, as Count reports); a negative n disarms.
func (i *Injector) CutAt(n int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cutAt = n
}

// Point is called before every write. It returns ErrPowerCut once power is
// off, including at the point where it goes off.
func (i *Injector) Point(name string) error {
	_, err := i.Cut(name)
	return err
}

// Cut is Point that also says whether the cut happened at this very point
// (so the caller can leave a torn write behind).
func (i *Injector) Cut(name string) (here bool, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.dead {
		return false, ErrPowerCut
	}
	idx := i.n
	i.n++
	i.names = append(i.names, name)
	if idx != i.cutAt {
		return false, nil
	}
	i.dead = true
	i.cuts++
	for _, v := range i.volatile {
		v.PowerLoss(i.rng)
	}
	return true, fmt.Errorf("%w at point %d (%s)", ErrPowerCut, idx, name)
}

// Alive returns ErrPowerCut if power is off (for reads).
func (i *Injector) Alive() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.dead {
		return ErrPowerCut
	}
	return nil
}

// Dead reports whether power is off.
func (i *Injector) Dead() bool { return i.Alive() != nil }

// Revive turns power back on. A cut armed for a later point stays armed.
func (i *Injector) Revive() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.dead = false
}

// Cuts returns how many power cuts happened.
func (i *Injector) Cuts() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cuts
}

// Count returns how many points have been passed.
func (i *Injector) Count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.n
}

// Names returns the names of the points passed, in order.
func (i *Injector) Names() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.names...)
}

// Rand returns a value from the injector's generator.
func (i *Injector) Rand(n int) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.rng.IntN(n)
}

// Register adds state that a power cut affects.
func (i *Injector) Register(v Volatile) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.volatile = append(i.volatile, v)
}

// FlushAll makes all volatile state durable (clean reboot).
func (i *Injector) FlushAll() error {
	i.mu.Lock()
	vs := append([]Volatile(nil), i.volatile...)
	i.mu.Unlock()
	var errs []error
	for _, v := range vs {
		errs = append(errs, v.Flush())
	}
	return errors.Join(errs...)
}
