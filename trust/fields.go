package trust

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Signed fields koshin adds to the "signed" object of targets metadata. go-tuf
// keeps unrecognised fields when it decodes and re-encodes metadata, so they
// are covered by the role's signatures like every standard field.
const (
	// FloorsField (image repository targets): FloorKey(hardware ID,
	// component) → minimum release counter a device of that hardware may
	// install for that component. Raised by revocation. Keyed by component
	// too, so revoking an application release does not block the rootfs.
	FloorsField = "min_release_counter"
	// DeviceField and NonceField (director targets): the device the document
	// was signed for and the nonce that device sent with its check-in.
	DeviceField = "device_id"
	NonceField  = "nonce"
)

// MaxReleaseCounter bounds release counters so they survive JSON numbers
// (float64) exactly in every decoder.
const MaxReleaseCounter = 1 << 53

// MaxNonceLen bounds the director nonce (hex or base64 of ≥16 random bytes).
const MaxNonceLen = 128

// floorSep separates hardware ID and component in a floor key; ValidateID
// never admits it, so keys are unambiguous.
const floorSep = "#"

// FloorKey is the key of the floor for one component on one hardware.
func FloorKey(hardwareID, component string) string { return hardwareID + floorSep + component }

// SplitFloorKey is the inverse of FloorKey; it validates both parts.
func SplitFloorKey(key string) (hardwareID, component string, err error) {
	hardwareID, component, ok := strings.Cut(key, floorSep)
	if !ok {
		return "", "", fmt.Errorf("%w: floor key %q is not HARDWARE%sCOMPONENT", ErrInvalid, key, floorSep)
	}
	if err := ValidateID("hardware ID", hardwareID); err != nil {
		return "", "", err
	}
	if err := ValidateID("component", component); err != nil {
		return "", "", err
	}
	return hardwareID, component, nil
}

// Floors returns the release-counter floors signed into image targets
// metadata, keyed by FloorKey; an absent field means no floors.
func Floors(t *metadata.TargetsType) (map[string]uint64, error) {
	floors := map[string]uint64{}
	if err := decodeField(t.UnrecognizedFields, FloorsField, &floors); err != nil {
		return nil, err
	}
	for key, n := range floors {
		if _, _, err := SplitFloorKey(key); err != nil {
			return nil, err
		}
		if n > MaxReleaseCounter {
			return nil, fmt.Errorf("%w: floor for %s exceeds %d", ErrInvalid, key, uint64(MaxReleaseCounter))
		}
	}
	return floors, nil
}

// SetFloors writes floors into image targets metadata (nil or empty removes
// the field).
func SetFloors(t *metadata.TargetsType, floors map[string]uint64) {
	if len(floors) == 0 {
		delete(t.UnrecognizedFields, FloorsField)
		return
	}
	setField(t, FloorsField, maps.Clone(floors))
}

// DirectorInfo is what binds a director targets document to one device and
// one check-in.
type DirectorInfo struct {
	DeviceID string
	Nonce    string
}

// ReadDirectorInfo extracts and validates the device binding of director
// targets metadata.
func ReadDirectorInfo(t *metadata.TargetsType) (DirectorInfo, error) {
	var info DirectorInfo
	if err := decodeField(t.UnrecognizedFields, DeviceField, &info.DeviceID); err != nil {
		return info, err
	}
	if err := decodeField(t.UnrecognizedFields, NonceField, &info.Nonce); err != nil {
		return info, err
	}
	if err := ValidateID("device ID", info.DeviceID); err != nil {
		return info, err
	}
	if info.Nonce == "" || len(info.Nonce) > MaxNonceLen {
		return info, fmt.Errorf("%w: director nonce must be 1-%d bytes", ErrInvalid, MaxNonceLen)
	}
	return info, nil
}

// SetDirectorInfo binds director targets metadata to a device and nonce.
func SetDirectorInfo(t *metadata.TargetsType, info DirectorInfo) {
	setField(t, DeviceField, info.DeviceID)
	setField(t, NonceField, info.Nonce)
}

func setField(t *metadata.TargetsType, name string, v any) {
	if t.UnrecognizedFields == nil {
		t.UnrecognizedFields = map[string]any{}
	}
	t.UnrecognizedFields[name] = v
}

// decodeField round-trips a generically decoded field through JSON into v;
// a missing field leaves v untouched.
func decodeField(fields map[string]any, name string, v any) error {
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("%w: field %s: %v", ErrInvalid, name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: field %s: %v", ErrInvalid, name, err)
	}
	return nil
}

// RootChannelField (root metadata of both repositories): the channel the
// root was created for. A device provisioned for production refuses a root
// whose channel is dev (CCDS UPC04, HLC01), and a dev root can never be
// mistaken for a release root because the field is signed.
const RootChannelField = "channel"

// RootChannel returns the signed channel of a root; roots without the field
// are treated as invalid so that an unlabelled root cannot be provisioned.
func RootChannel(r *metadata.RootType) (Channel, error) {
	var c Channel
	if err := decodeField(r.UnrecognizedFields, RootChannelField, &c); err != nil {
		return "", err
	}
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("root: %w", err)
	}
	return c, nil
}

// SetRootChannel labels a root with its channel.
func SetRootChannel(r *metadata.RootType, c Channel) {
	if r.UnrecognizedFields == nil {
		r.UnrecognizedFields = map[string]any{}
	}
	r.UnrecognizedFields[RootChannelField] = string(c)
}
