package agent_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/deviceapi"
)

func appTar(t *testing.T, body string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// An archive payload is applied in place: no reboot, the health check runs
// right after the switch, then commit or rollback.
func TestInPlaceArchiveUpdate(t *testing.T) {
	for _, healthy := range []bool{true, false} {
		t.Run(map[bool]string{true: "healthy", false: "unhealthy"}[healthy], func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, false)
			c := custom(2)
			c.Component = "app"
			w.img.AddTarget("app-2.tar", appTar(t, "v2"), c)
			w.img.Publish()
			s := w.newSim(t, 9, 3)
			defer s.cleanup()
			root := filepath.Join(s.d.Dir, "app")
			os.MkdirAll(root, 0o755)
			s.tweak = func(cfg *agent.Config) {
				cfg.Installers["app"] = &install.Archive{Root: root, Work: filepath.Join(s.d.Dir, "work")}
			}
			if !healthy {
				s.health = healthFunc(func(context.Context) error { return errors.New("app does not answer") })
			}
			s.srv.Assign("app-2.tar")
			e := s.boot(ctx)
			defer e.Close()
			if _, err := e.Poll(ctx); err != nil {
				t.Fatalf("poll: %v (an in-place update needs no reboot)", err)
			}
			st, _ := e.Status(ctx)
			n, _ := s.d.Counter().Get("app")
			_, linkErr := os.Readlink(filepath.Join(root, "current"))
			got, _ := os.ReadFile(filepath.Join(root, "current", "bin", "app"))
			if healthy {
				if st.Tx.State != agent.StateCommitted || n != 2 || string(got) != "v2" || s.srv.Count(deviceapi.EventCommitted) != 1 {
					t.Fatalf("state %s, counter %d, current/bin/app %q", st.Tx.State, n, got)
				}
			} else {
				if st.Tx.State != agent.StateRolledBack || n != 0 || linkErr == nil || s.srv.Count(deviceapi.EventRolledBack) != 1 {
					t.Fatalf("state %s, counter %d, current link err %v", st.Tx.State, n, linkErr)
				}
			}
			if env, _ := s.d.Boot.Read(); env.Slot != "A" || env.UpgradeAvailable {
				t.Fatalf("bootloader touched by an in-place update: %+v", env)
			}
		})
	}
}
