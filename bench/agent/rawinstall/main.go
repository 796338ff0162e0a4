// Command rawinstall installs a raw image into a slot file along the data
// path the agent's engine takes for an A/B update, minus the network and
// the metadata refresh (kilobytes, independent of the payload size): the
// trust core's streaming PayloadReader (signed length, SHA-256, the
// slow-retrieval watchdog at the agent's default floor) feeds the Raw
// installer's sink on the inactive slot in 64 KiB reads; every 4 MiB (the
// engine's default checkpoint interval) the slot is fsynced and the journal
// is rewritten atomically with the hash-state checkpoint; at the end the
// sink is finished (fsync, close), the journal moves to verifying, and the
// Raw installer reads the slot back and hashes it against the signed digest
// before anything could be switched.
//
// It exists for bench/agent/run.sh, which times it against dd, RAUC,
// SWUpdate and Mender installing the same image into the same kind of slot
// file.
//
//	rawinstall -image IMG -sha256 HEX -slot SLOT -state DIR
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

func main() {
	image := flag.String("image", "", "raw image `file` (the download)")
	sum := flag.String("sha256", "", "signed SHA-256 of the image (`hex`)")
	slot := flag.String("slot", "", "inactive slot: block device or image `file`")
	state := flag.String("state", "", "state `directory` for the journal")
	every := flag.Int64("checkpoint", 4<<20, "`bytes` between durable checkpoints (the engine's default)")
	flag.Parse()
	if *image == "" || *sum == "" || *slot == "" || *state == "" {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	n, err := run(*image, *sum, *slot, *state, *every)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawinstall:", err)
		os.Exit(1)
	}
	d := time.Since(start)
	fmt.Printf("installed %d bytes in %.3f s (%.1f MiB/s), verified by read-back\n", n, d.Seconds(), float64(n)/(1<<20)/d.Seconds())
}

func run(image, sum, slot, state string, every int64) (int64, error) {
	ctx := context.Background()
	if _, err := hex.DecodeString(sum); err != nil || len(sum) != 64 {
		return 0, errors.New("-sha256 must be 64 hex digits")
	}
	f, err := os.Open(image)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	target := agent.Target{Name: filepath.Base(image), Length: st.Size(), Hashes: map[string]string{"sha256": sum},
		Custom: trust.TargetCustom{HardwareIDs: []string{"bench-board"}, Component: "rootfs", ReleaseCounter: 2,
			Version: "2.0", Channel: trust.ChannelRelease}}
	if err := target.Validate(); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return 0, err
	}
	journal := agent.DirFS(state)
	// Slot A is the booted one and is never opened.
	raw := &install.Raw{Slots: install.FileSlots{A: "/nonexistent/booted-slot", B: slot}}
	tx := &agent.Transaction{ID: "bench", State: agent.StateDownloading, Target: target, Slot: "B", FromSlot: "A",
		Started: time.Now().UTC()}
	if err := save(journal, tx); err != nil {
		return 0, err
	}
	pr, err := (&agent.TrustVerifier{Watchdog: verify.PayloadOptions{MinRate: 1024, Window: 30 * time.Second}}).
		Payload(target, f, 0, nil)
	if err != nil {
		return 0, err
	}
	sink, err := raw.Open(ctx, tx, 0)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	var off, last int64
	for {
		n, rerr := pr.Read(buf)
		if n > 0 {
			if _, err := sink.Write(buf[:n]); err != nil {
				sink.Abort()
				return 0, fmt.Errorf("write slot: %w", err)
			}
			off += int64(n)
			if off-last >= every && off < target.Length {
				if err := sink.Sync(); err != nil {
					return 0, err
				}
				cp, err := pr.Checkpoint()
				if err != nil {
					return 0, err
				}
				tx.Offset, tx.Checkpoint = off, cp
				if err := save(journal, tx); err != nil {
					return 0, err
				}
				last = off
			}
		}
		if rerr == io.EOF {
			break // length and hash verified
		}
		if rerr != nil {
			sink.Abort()
			return 0, rerr
		}
	}
	d, err := sink.Finish()
	if err != nil {
		return 0, err
	}
	tx.Written, tx.Offset, tx.Checkpoint, tx.State = &d, 0, nil, agent.StateVerifying
	if err := save(journal, tx); err != nil {
		return 0, err
	}
	if err := raw.Verify(ctx, tx); err != nil {
		return 0, err
	}
	tx.State = agent.StateInstalling
	return off, save(journal, tx)
}

// save writes the transaction the way the engine's journal is written:
// one small JSON file, replaced atomically (temp file, fsync, rename,
// fsync directory).
func save(fs agent.DirFS, tx *agent.Transaction) error {
	tx.Updated = time.Now().UTC()
	b, err := json.Marshal(tx)
	if err != nil {
		return err
	}
	return fs.WriteFile("journal.json", b)
}
