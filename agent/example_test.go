package agent_test

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"log/slog"
	"os/exec"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/bootenv"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/agent/uboot"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// Example wiring of a device with a redundant U-Boot environment, two
// eMMC root partitions and an application tree, as cmd/koshin-agent does
// from its configuration file.
func Example() {
	var (
		deviceKey crypto.Signer    // the device's identity key (TPM or file)
		hpkeKey   *ecdh.PrivateKey // for encrypted releases
		server    agent.Server     // the device API v1 client (mutual TLS)
		counterK  []byte           // device-local key for the counter MAC
		log       = slog.Default()
	)
	fetcher := &verify.HTTPFetcher{MinRate: 8 << 10}
	v, err := verify.New(verify.Config{
		Device: trust.Device{ID: "dev-0001", HardwareID: "board-a", Channel: trust.ChannelRelease},
		Dir:    "/var/lib/koshin/trust", ImageURL: "https://updates.example/device/v1/image",
		DirectorURL: "https://updates.example/device/v1/director", TargetsURL: "https://updates.example/device/v1/targets",
		Fetcher: fetcher, Now: time.Now,
	})
	if err != nil {
		log.Error("verifier", "err", err)
		return
	}
	slots := install.FileSlots{A: "/dev/mmcblk0p2", B: "/dev/mmcblk0p3"}
	state := agent.DirFS("/var/lib/koshin/agent")
	e, err := agent.New(agent.Config{
		DeviceID: "dev-0001", HardwareID: "board-a", Signer: deviceKey, DecryptionKey: hpkeKey,
		Server: server, Fetcher: fetcher,
		Verifier: &agent.TrustVerifier{V: v, Watchdog: verify.PayloadOptions{MinRate: 8 << 10, Window: 30 * time.Second}},
		Bootloader: &bootenv.UBoot{
			Env: uboot.Config{LockPath: uboot.DefaultLockPath, Copies: []uboot.Location{
				{Path: "/dev/mmcblk0", Offset: 0x3f8000, Size: 0x4000},
				{Path: "/dev/mmcblk0", Offset: 0x3fc000, Size: 0x4000}}},
			Booted: bootenv.BootedFromCmdline("/proc/cmdline")},
		Slots: slots,
		Installers: map[string]agent.Installer{
			"rootfs": &install.Raw{Slots: slots},
			"app":    &install.Archive{Root: "/opt/app", Work: "/var/lib/koshin/work"},
		},
		Health:   agent.DirHealthCheck{Dir: "/etc/koshin/health.d", Timeout: time.Minute},
		Counter:  &agent.FileCounter{FS: state, Key: counterK},
		State:    state,
		LockFile: "/run/koshin-agent.lock",
		Reboot:   func(ctx context.Context) error { return exec.CommandContext(ctx, "systemctl", "reboot").Run() },
		Log:      log,
	})
	if err != nil {
		log.Error("engine", "err", err)
		return
	}
	defer e.Close()
	// Run returns agent.ErrReboot once the system is going down.
	log.Info("agent stopped", "err", e.Run(context.Background()))
}
