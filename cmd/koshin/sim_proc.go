package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/sim"
)

// procUsage is a process's CPU time and peak resident memory, read from
// Linux's /proc (what getrusage reports for the process itself).
type procUsage struct {
	cpu     time.Duration
	peakRSS int64 // bytes (VmHWM)
}

// userHZ is the unit of /proc/PID/stat's CPU times on Linux.
const userHZ = 100

func readProcUsage(pid int) (procUsage, error) {
	var u procUsage
	if pid <= 0 {
		return u, nil
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name, which may contain spaces, start with
	// the state (field 3); utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	u.cpu = time.Duration(ut+st) * time.Second / userHZ
	u.peakRSS, err = readHWM(pid)
	return u, err
}

func readHWM(pid int) (int64, error) {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// procReport is a process's share of a run.
type procReport struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// ReadyCPUSeconds is the part spent until every device had enrolled
	// and checked in once; AfterReadyCPUSeconds the rest (the rollout).
	ReadyCPUSeconds      float64 `json:"cpu_seconds_until_ready,omitempty"`
	AfterReadyCPUSeconds float64 `json:"cpu_seconds_after_ready,omitempty"`
	// CPUPerUpdate is CPU seconds per device that committed an update in
	// the run: all of the process's work divided by them, and the work
	// after the fleet was ready divided by them.
	CPUPerUpdate           float64 `json:"cpu_seconds_per_update,omitempty"`
	AfterReadyCPUPerUpdate float64 `json:"cpu_seconds_per_update_after_ready,omitempty"`
	PeakRSSMiB             float64 `json:"peak_rss_mib"`
	Error                  string  `json:"error,omitempty"`
}

func serverUsage(before procUsage, berr error, atReady <-chan procUsage, pid int, s *sim.Summary) *procReport {
	r := &procReport{PID: pid}
	after, err := readProcUsage(pid)
	if err = firstErr(berr, err); err != nil {
		r.Error = err.Error()
		return r
	}
	r.CPUSeconds = (after.cpu - before.cpu).Seconds()
	select {
	case ready := <-atReady:
		r.ReadyCPUSeconds = (ready.cpu - before.cpu).Seconds()
		r.AfterReadyCPUSeconds = (after.cpu - ready.cpu).Seconds()
	default:
	}
	if s.Updated > 0 {
		r.CPUPerUpdate = r.CPUSeconds / float64(s.Updated)
		r.AfterReadyCPUPerUpdate = r.AfterReadyCPUSeconds / float64(s.Updated)
	}
	r.PeakRSSMiB = mib(after.peakRSS)
	return r
}

func mib(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// selfUsage is the simulator's own CPU time and peak memory (Linux).
func selfUsage() *procReport {
	u, err := readProcUsage(os.Getpid())
	if err != nil {
		return nil
	}
	return &procReport{PID: os.Getpid(), CPUSeconds: u.cpu.Seconds(), PeakRSSMiB: mib(u.peakRSS)}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// startProfiles starts a CPU profile to cpu and returns a function that
// stops it and writes a heap profile to mem (either name may be empty).
func startProfiles(cpu, mem string) (func(), error) {
	var cf *os.File
	if cpu != "" {
		var err error
		if cf, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cf); err != nil {
			cf.Close()
			return nil, err
		}
	}
	return func() {
		if cf != nil {
			pprof.StopCPUProfile()
			cf.Close()
		}
		if mem != "" {
			if mf, err := os.Create(mem); err == nil {
				runtime.GC()
				pprof.WriteHeapProfile(mf)
				mf.Close()
			}
		}
	}, nil
}
