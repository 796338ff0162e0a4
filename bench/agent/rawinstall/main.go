// Command rawinstall installs a raw image into a slot file along the data
// path the agent's engine takes for an A/B update, minus the network and
// the metadata refresh (kilobytes, independent of the payload size): the
// trust core's streaming PayloadReader (signed length, SHA-256, the
// slow-retrieval watchdog at the agent's default floor) feeds the Raw
// installer's sink on the inactive slot in 64 KiB reads; with the engine's
// checkpoint policy (by default once both 4 MiB and 1 s passed since the
// last checkpoint) the slot is fsynced and the journal is rewritten
// atomically with the hash-state checkpoint; at the end the sink is
// finished (fsync, close), the journal moves to verifying, and the Raw
// installer completes the read-back of the slot (begun in the background
// while the slot was written) and compares its hash with the signed digest
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
	every := flag.Int64("checkpoint", 4<<20, "least `bytes` between durable checkpoints (the engine's default)")
	interval := flag.Duration("checkpoint-interval", time.Second, "least `time` between durable checkpoints (the engine's default; 0: by bytes only)")
	flag.Parse()
	if *image == "" || *sum == "" || *slot == "" || *state == "" {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	n, p, err := run(*image, *sum, *slot, *state, agent.CheckpointPolicy{Every: *every, MinInterval: *interval})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawinstall:", err)
		os.Exit(1)
	}
	d := time.Since(start)
	fmt.Printf("installed %d bytes in %.3f s (%.1f MiB/s), verified by read-back; "+
		"%d checkpoints (%.3f s in slot fsyncs), final fsync %.3f s, rest of the read-back %.3f s\n",
		n, d.Seconds(), float64(n)/(1<<20)/d.Seconds(), p.checkpoints, p.syncs.Seconds(), p.finish.Seconds(), p.verify.Seconds())
}

// phases are where the time went.
type phases struct {
	checkpoints           int
	syncs, finish, verify time.Duration
}

func run(image, sum, slot, state string, policy agent.CheckpointPolicy) (_ int64, p phases, _ error) {
	ctx := context.Background()
	if _, err := hex.DecodeString(sum); err != nil || len(sum) != 64 {
		return 0, p, errors.New("-sha256 must be 64 hex digits")
	}
	f, err := os.Open(image)
	if err != nil {
		return 0, p, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, p, err
	}
	target := agent.Target{Name: filepath.Base(image), Length: st.Size(), Hashes: map[string]string{"sha256": sum},
		Custom: trust.TargetCustom{HardwareIDs: []string{"bench-board"}, Component: "rootfs", ReleaseCounter: 2,
			Version: "2.0", Channel: trust.ChannelRelease}}
	if err := target.Validate(); err != nil {
		return 0, p, err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return 0, p, err
	}
	journal := agent.DirFS(state)
	// Slot A is the booted one and is never opened.
	raw := &install.Raw{Slots: install.FileSlots{A: "/nonexistent/booted-slot", B: slot}}
	tx := &agent.Transaction{ID: "bench", State: agent.StateDownloading, Target: target, Slot: "B", FromSlot: "A",
		Started: time.Now().UTC()}
	if err := save(journal, tx); err != nil {
		return 0, p, err
	}
	pr, err := (&agent.TrustVerifier{Watchdog: verify.PayloadOptions{MinRate: 1024, Window: 30 * time.Second}}).
		Payload(target, f, 0, nil)
	if err != nil {
		return 0, p, err
	}
	sink, err := raw.Open(ctx, tx, 0)
	if err != nil {
		return 0, p, err
	}
	buf := make([]byte, 64<<10)
	var off int64
	policy.Start(0)
	for {
		n, rerr := pr.Read(buf)
		if n > 0 {
			if _, err := sink.Write(buf[:n]); err != nil {
				sink.Abort()
				return 0, p, fmt.Errorf("write slot: %w", err)
			}
			off += int64(n)
			if off < target.Length && policy.Due(off) {
				t := time.Now()
				if err := sink.Sync(); err != nil {
					return 0, p, err
				}
				p.syncs += time.Since(t)
				p.checkpoints++
				cp, err := pr.Checkpoint()
				if err != nil {
					return 0, p, err
				}
				tx.Offset, tx.Checkpoint = off, cp
				if err := save(journal, tx); err != nil {
					return 0, p, err
				}
				policy.Done(off)
			}
		}
		if rerr == io.EOF {
			break // length and hash verified
		}
		if rerr != nil {
			sink.Abort()
			return 0, p, rerr
		}
	}
	t := time.Now()
	d, err := sink.Finish()
	p.finish = time.Since(t)
	if err != nil {
		return 0, p, err
	}
	tx.Written, tx.Offset, tx.Checkpoint, tx.State = &d, 0, nil, agent.StateVerifying
	if err := save(journal, tx); err != nil {
		return 0, p, err
	}
	t = time.Now()
	if err := raw.Verify(ctx, tx); err != nil {
		return 0, p, err
	}
	p.verify = time.Since(t)
	tx.State = agent.StateInstalling
	return off, p, save(journal, tx)
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
