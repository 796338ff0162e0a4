package tpm_test

import (
	"fmt"
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

// needSwtpm skips unless the integration tests were asked for and swtpm
// is installed (Debian: apt-get install swtpm swtpm-tools).
func needSwtpm(t *testing.T) {
	t.Helper()
	if os.Getenv("KOSHIN_INTEGRATION") != "1" {
		t.Skip("TPM tests need swtpm: set KOSHIN_INTEGRATION=1 (and apt-get install swtpm swtpm-tools)")
	}
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip("KOSHIN_INTEGRATION=1 but swtpm is not on PATH: apt-get install swtpm swtpm-tools")
	}
}

// swtpm is a running software TPM with its NV state in Dir.
type swtpm struct {
	t                 *testing.T
	Dir               string
	cmd               *exec.Cmd
	exited            chan struct{}
	command, platform string
	conn              transport.TPMCloser
}

// startSwtpm starts a fresh software TPM in a temporary state directory;
// t.Cleanup kills it.
func startSwtpm(t *testing.T) *swtpm {
	t.Helper()
	s := &swtpm{t: t, Dir: t.TempDir()}
	s.start()
	return s
}

// start runs swtpm on free loopback ports, on the state in s.Dir. Free
// ports are only free until swtpm binds them; if another process takes one
// first, swtpm exits and start tries new ports.
func (s *swtpm) start() {
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
		s.t.Cleanup(s.kill)
		if s.ready() {
			return
		}
		if attempt == 5 {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "swtpm.log"))
			s.t.Fatalf("swtpm exited before listening, %d times; log:\n%s", attempt, log)
		}
	}
}

// ready waits until both ports accept connections (true) or swtpm exits
// (false).
func (s *swtpm) ready() bool {
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

// kill stops swtpm abruptly, as a power cut would.
func (s *swtpm) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// restart kills swtpm and starts it again on the same NV state.
func (s *swtpm) restart() {
	s.t.Helper()
	s.kill()
	s.start()
}

// open connects to swtpm. swtpm serves one connection at a time, so open
// closes the previous one (as a new agent process would find the old one
// gone); t.Cleanup closes the last.
func (s *swtpm) open() transport.TPMCloser {
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// flaky wraps a TPM so that every other command is answered TPM_RC_RETRY
// without reaching it, as a busy TPM may answer any command: the Counter
// must repeat each one.
type flaky struct {
	transport.TPM
	n, injected int
}

func (f *flaky) Send(cmd []byte) ([]byte, error) {
	f.n++
	if f.n%2 == 1 {
		f.injected++
		// TPM_ST_NO_SESSIONS, size 10, TPM_RC_RETRY (0x922).
		return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x22}, nil
	}
	return f.TPM.Send(cmd)
}

func (f *flaky) String() string {
	return fmt.Sprintf("%d commands, %d retries injected", f.n, f.injected)
}
