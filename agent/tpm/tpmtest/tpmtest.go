// Package tpmtest runs a software TPM (swtpm, from Debian's swtpm and
// swtpm-tools packages) for tests of code that keeps counters in a TPM,
// as net/http/httptest runs an HTTP server. It is for tests only: the
// agent must never link it (it imports testing).
package tpmtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/koshin-ota/koshin/agent/tpm"
)

// Need skips the test unless the integration tests were asked for
// (KOSHIN_INTEGRATION=1) and swtpm is installed.
func Need(t testing.TB) {
	t.Helper()
	if os.Getenv("KOSHIN_INTEGRATION") != "1" {
		t.Skip("TPM tests need swtpm: set KOSHIN_INTEGRATION=1 (and apt-get install swtpm swtpm-tools)")
	}
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip("KOSHIN_INTEGRATION=1 but swtpm is not on PATH: apt-get install swtpm swtpm-tools")
	}
}

// SWTPM is a running software TPM with its NV state in Dir. It listens on
// loopback: TPM commands at CommandAddr, platform (power) commands at
// PlatformAddr. swtpm serves one connection at a time.
type SWTPM struct {
	Dir string

	t                 testing.TB
	cmd               *exec.Cmd
	exited            chan struct{}
	command, platform string
	conn              transport.TPMCloser
}

// Start starts a fresh software TPM, started up (TPM2_Startup(CLEAR)), in
// a temporary state directory; t.Cleanup kills it.
func Start(t testing.TB) *SWTPM {
	t.Helper()
	s := &SWTPM{t: t, Dir: t.TempDir()}
	t.Cleanup(s.Kill)
	s.start()
	return s
}

// CommandAddr is the address swtpm takes TPM commands on (host:port); it
// changes when swtpm restarts.
func (s *SWTPM) CommandAddr() string { return s.command }

// PlatformAddr is the address of swtpm's platform (control) port; it
// changes when swtpm restarts.
func (s *SWTPM) PlatformAddr() string { return s.platform }

// start runs swtpm on free loopback ports, on the state in s.Dir. Free
// ports are only free until swtpm binds them; if another process takes one
// first, swtpm exits and start tries new ports.
func (s *SWTPM) start() {
	s.t.Helper()
	for attempt := 1; ; attempt++ {
		cport, pport := freePort(s.t), freePort(s.t)
		cmd := exec.Command("swtpm", "socket", "--tpm2",
			"--tpmstate", "dir="+s.Dir,
			"--server", "type=tcp,port="+strconv.Itoa(cport)+",bindaddr=127.0.0.1",
			"--ctrl", "type=tcp,port="+strconv.Itoa(pport)+",bindaddr=127.0.0.1",
			"--flags", "not-need-init,startup-clear",
			"--log", "file="+filepath.Join(s.Dir, "swtpm.log"))
		if err := cmd.Start(); err != nil {
			s.t.Fatalf("start swtpm: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		s.cmd, s.exited = cmd, exited
		s.command = net.JoinHostPort("127.0.0.1", strconv.Itoa(cport))
		s.platform = net.JoinHostPort("127.0.0.1", strconv.Itoa(pport))
		if s.ready() {
			return
		}
		s.Kill()
		if attempt == 5 {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "swtpm.log"))
			s.t.Fatalf("swtpm exited before listening, %d times; log:\n%s", attempt, log)
		}
	}
}

// ready waits until both ports accept connections (true) or swtpm exits
// (false).
func (s *SWTPM) ready() bool {
	for _, addr := range []string{s.command, s.platform} {
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-s.exited:
				return false
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return true
}

// Kill stops swtpm abruptly, as a power cut would. Its NV state stays in
// Dir for Restart.
func (s *SWTPM) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart kills swtpm and starts it again on the same NV state, on new
// ports.
func (s *SWTPM) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Open connects to swtpm. swtpm serves one connection at a time, so Open
// closes the connection it opened before (as a new agent process would
// find the old one gone); t.Cleanup closes the last. Code under test that
// opens its own connections can do so with tpm.OpenTCP(s.CommandAddr(),
// s.PlatformAddr()), while no connection from Open is in use.
func (s *SWTPM) Open() transport.TPMCloser {
	s.t.Helper()
	if s.conn != nil {
		s.conn.Close()
	}
	tp, err := tpm.OpenTCP(s.command, s.platform)
	if err != nil {
		s.t.Fatalf("connect to swtpm: %v", err)
	}
	s.conn = tp
	s.t.Cleanup(func() { tp.Close() })
	return tp
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
