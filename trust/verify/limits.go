package verify

// Limits bound what a repository can make the device download or parse.
// Metadata is attacker-supplied until verified (endless-data attack), and a
// small device must not be made to buffer arbitrary amounts of it.
// Zero fields take the defaults below, which match go-tuf's.
type Limits struct {
	MaxRootSize      int64 // bytes of one root.json
	MaxTimestampSize int64
	MaxSnapshotSize  int64
	MaxTargetsSize   int64
	// MaxDirectorSize bounds the director targets document of a check-in.
	MaxDirectorSize int64
	// MaxRootRotations bounds the N+1.root.json walk of one refresh.
	MaxRootRotations int
	// MaxDirectorTargets bounds how many targets one instruction may name.
	MaxDirectorTargets int
	// MaxDelegations bounds the delegated roles ImageClient visits per lookup.
	MaxDelegations int
}

// Default limits.
const (
	DefaultMaxRootSize        = 512_000
	DefaultMaxTimestampSize   = 16_384
	DefaultMaxSnapshotSize    = 2_000_000
	DefaultMaxTargetsSize     = 5_000_000
	DefaultMaxDirectorSize    = 256 << 10
	DefaultMaxRootRotations   = 256
	DefaultMaxDirectorTargets = 64
	DefaultMaxDelegations     = 32
)

func (l Limits) withDefaults() Limits {
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64(&l.MaxRootSize, DefaultMaxRootSize)
	def64(&l.MaxTimestampSize, DefaultMaxTimestampSize)
	def64(&l.MaxSnapshotSize, DefaultMaxSnapshotSize)
	def64(&l.MaxTargetsSize, DefaultMaxTargetsSize)
	def64(&l.MaxDirectorSize, DefaultMaxDirectorSize)
	def(&l.MaxRootRotations, DefaultMaxRootRotations)
	def(&l.MaxDirectorTargets, DefaultMaxDirectorTargets)
	def(&l.MaxDelegations, DefaultMaxDelegations)
	return l
}

// capLen returns the download limit for a file whose signed length is
// signed (0 if the referencing metadata omits it): the signed length when
// it is smaller than the configured maximum.
func capLen(signed, max int64) int64 {
	if signed > 0 && signed < max {
		return signed
	}
	return max
}
