package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/sim"
)

type simLabFlags struct {
	dir       string
	devices   int
	imageSize int
	seed      string
	poll      time.Duration
	inFlight  int
}

// simLabCmd prepares an installation for rehearsals and capacity runs
// where the server is its own process (so that its CPU time and memory
// can be measured apart from the simulator's).
func (m *Main) simLabCmd() *cobra.Command {
	var f simLabFlags
	c := &cobra.Command{
		Use:   "lab --dir DIR --devices N",
		Short: "Prepare a server installation and a pre-authorised simulated fleet for it",
		Long: `lab prepares DIR for running 'koshin server' and 'koshin sim' as separate
processes: an image repository holding releases demo-os-1.0 and demo-os-1.1
of a demo image (signed with keys that are then discarded), an initialised
server data directory that imported both, an administrator with a random
password (printed), an API token for the CLI (DIR/api-token), the
pre-authorisation of N simulated devices (seed in DIR/seed), and a server
configuration (DIR/server.yaml) on two free loopback ports. It prints the
commands that start the server, the fleet and a rollout.

The director key passphrase is in DIR/director-passphrase (mode 0600):
this is a throw-away installation for rehearsals and measurements.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return m.simLab(cmd.Context(), f) },
	}
	c.Flags().StringVar(&f.dir, "dir", "", "new or empty `DIR` for the installation")
	c.Flags().IntVar(&f.devices, "devices", 1000, "devices to pre-authorise")
	c.Flags().IntVar(&f.imageSize, "image-size", 64<<10, "demo image size in bytes")
	c.Flags().StringVar(&f.seed, "seed", "", "fleet seed (default: random)")
	c.Flags().DurationVar(&f.poll, "poll-interval", koshin.MinPollInterval, "poll interval the server tells devices")
	c.Flags().IntVar(&f.inFlight, "max-in-flight", defaultServerConfig().Limits.MaxInFlight, "the server's cap on device API calls served at once")
	c.MarkFlagRequired("dir")
	return c
}

func (m *Main) simLab(ctx context.Context, f simLabFlags) error {
	if f.devices < 1 || f.devices > sim.MaxDevices || f.imageSize < 1 || f.imageSize > 256<<20 || f.inFlight < 1 {
		return usagef("--devices must be 1-%d, --image-size 1 B-256 MiB, --max-in-flight positive", sim.MaxDevices)
	}
	if err := emptyDir(f.dir); err != nil {
		return err
	}
	if f.seed == "" {
		f.seed = sim.NewSeed()
	}
	logf, err := os.OpenFile(filepath.Join(f.dir, "lab-setup.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	l, err := newLab(ctx, m, f.dir, labOptions{imageSize: f.imageSize, log: logf, kdf: m.KDF,
		config: func(c *ServerConfig) {
			c.PollInterval, c.PollJitter = f.poll, f.poll/2
			c.Limits.MaxInFlight = f.inFlight
		}})
	if err != nil {
		return err
	}
	defer l.close()
	if err := l.preauthorize(ctx, f.seed, "LAB", "lab", f.devices); err != nil {
		return err
	}
	var tok struct{ Token string }
	if err := l.api.do(ctx, "POST", "/api/v1/tokens", map[string]any{"name": "lab"}, &tok); err != nil {
		return err
	}
	cfg := l.srv.Config
	l.close()
	return m.writeLab(f, l, cfg, tok.Token)
}

// emptyDir creates dir or checks that it is empty.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

// writeLab writes the lab's files and prints how to use them.
func (m *Main) writeLab(f simLabFlags, l *lab, cfg ServerConfig, token string) error {
	dev, err := freePort()
	if err != nil {
		return err
	}
	mgmt, err := freePort()
	if err != nil {
		return err
	}
	yaml := fmt.Sprintf(`# koshin server configuration of a simulator lab (koshin sim lab)
data_dir: %q
device_listen: %q
management_listen: %q
image:
  dir: %q
poll_interval: %s
poll_jitter: %s
engine_interval: 1s
limits:
  addr_rate: %g
  addr_burst: %d
  enroll_rate: %g
  enroll_burst: %d
  max_in_flight: %d
log_level: warn
`, cfg.DataDir, dev, mgmt, cfg.Image.Dir, cfg.PollInterval, cfg.PollJitter, cfg.Limits.AddrRate, cfg.Limits.AddrBurst,
		cfg.Limits.EnrollRate, cfg.Limits.EnrollBurst, cfg.Limits.MaxInFlight)
	abs, _ := filepath.Abs(f.dir)
	files := map[string]string{"server.yaml": yaml, "api-token": token + "\n", "seed": f.seed + "\n",
		"director-passphrase": string(l.passphrase) + "\n", "devices": fmt.Sprintln(f.devices)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	ca := filepath.Join(abs, "data", pkiDir, "server-ca.crt")
	w := m.Stdout
	fmt.Fprintf(w, "lab ready in %s: %d pre-authorised devices, releases %s and %s\n", abs, f.devices, labReleases[0].name, labReleases[1].name)
	fmt.Fprintf(w, "administrator %s, password (shown once): %s\n\n", l.admin, l.password)
	fmt.Fprintf(w, "start the server:\n  KOSHIN_PASSPHRASE=$(cat %s/director-passphrase) koshin server --config %s/server.yaml &\n", abs, abs)
	fmt.Fprintf(w, "start the fleet (rolls 1.1 out to all devices once they are up):\n")
	fmt.Fprintf(w, "  koshin sim --server https://%s --ca %s --image-root %s/published/1.root.json \\\n", dev, ca, abs)
	fmt.Fprintf(w, "    --factory %s --devices %d --seed $(cat %s/seed) --serial-prefix LAB --until-done \\\n", labReleases[0].name, f.devices, abs)
	fmt.Fprintf(w, "    --on-ready 'koshin rollout create --server https://%s --ca %s --token-file %s/api-token \\\n", mgmt, ca, abs)
	fmt.Fprintf(w, "      --release %s --all --phases 1%%,10%%,50%%,100%% --max-failure-percent 5 && \\\n", labReleases[1].name)
	fmt.Fprintf(w, "      koshin rollout start 1 --server https://%s --ca %s --token-file %s/api-token'\n", mgmt, ca, abs)
	return nil
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runHook runs an --on-ready command with sh, its output on w.
func runHook(ctx context.Context, command string, w io.Writer) error {
	if strings.TrimSpace(command) == "" {
		return errors.New("empty command")
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdout, cmd.Stderr = w, w
	return cmd.Run()
}
