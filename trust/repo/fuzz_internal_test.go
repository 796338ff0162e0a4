package repo

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// Parsers of files koshin reads from a workspace or from another machine
// must refuse bad input with an error, never panic, and accept only what
// they can write back identically.

func FuzzOpenConfig(f *testing.F) {
	f.Add((&config{Format: 1, Channel: "release", Expiry: DefaultExpiry, KeyRefs: map[string]string{}}).encode())
	f.Add([]byte(`{"format":1,"channel":"dev","expiry":{"root":"365d","targets":"90d","snapshot":"7d","timestamp":"6h"},"key_refs":{}}`))
	f.Add([]byte(`{"format":1,"channel":"dev","expiry":{"root":"-1h"}}`))
	f.Add([]byte(`{"format":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b)
		if err != nil {
			return
		}
		again, err := parseConfig(c.encode())
		if err != nil {
			t.Fatalf("re-parse of accepted config: %v", err)
		}
		if !bytes.Equal(again.encode(), c.encode()) {
			t.Fatal("config does not round-trip")
		}
	})
}

func FuzzParseCurrent(f *testing.F) {
	f.Add([]byte(`{"root":1,"targets":2,"snapshot":3,"timestamp":4}`))
	f.Add([]byte(`{"root":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCurrent(b)
		if err == nil && (c.Root < 1 || c.Targets < 1 || c.Snapshot < 1 || c.Timestamp < 1) {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func FuzzParseSignatureFile(f *testing.F) {
	f.Add([]byte(`{"koshin_signature":1,"role":"targets","version":2,"signed_sha256":"` + hex64 + `","keyid":"` + hex64 + `","sig":"abcd"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := ParseSignatureFile(b)
		if err == nil && (sf.Role != roleRoot && sf.Role != roleTargets) {
			t.Fatalf("accepted role %q", sf.Role)
		}
	})
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// SignOffline runs on exported files from another machine; whatever it
// accepts, DescribeUnsigned can show.
func FuzzSignOffline(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","consistent_snapshot":true,"keys":{},"roles":{"root":{"keyids":[],"threshold":1},"targets":{"keyids":[],"threshold":1},"snapshot":{"keyids":[],"threshold":1},"timestamp":{"keyids":[],"threshold":1}},"channel":"dev"},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"targets","targets":{"a":null}}}`))
	f.Add([]byte(`{"signed":{"_type":"root","roles":{"root":null}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := SignOffline(b, key); err != nil {
			return
		}
		if _, err := DescribeUnsigned(b); err != nil {
			t.Fatalf("signed but cannot describe: %v", err)
		}
	})
}

func FuzzDirectorConfig(f *testing.F) {
	f.Add([]byte(`{"format":1,"channel":"release","root_expiry":"365d"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseDirectorConfig(b); err == nil && c.Channel.Validate() != nil {
			t.Fatal("accepted invalid channel")
		}
	})
}
