package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc's CPU times: USER_HZ, 100 on Linux.
const clockTick = 1.0 / 100

// proc is one process's line of /proc/PID/stat.
type proc struct {
	comm      string
	ppid      int
	cpu       float64 // utime + stime, seconds
	children  float64 // cutime + cstime: its children waited for, seconds
	startTime uint64  // ticks after boot, so a reused pid is not mistaken
}

// parseStat reads the fields of /proc/PID/stat that matter here. comm is
// between the first '(' and the last ')' and may hold spaces.
func parseStat(b []byte) (proc, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return proc{}, fmt.Errorf("no comm in %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 20 {
		return proc{}, fmt.Errorf("short stat line %q", b)
	}
	// f[0] is field 3 (state) of proc(5).
	n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
	ppid, _ := strconv.Atoi(f[1])
	return proc{
		comm:      string(b[open+1 : end]),
		ppid:      ppid,
		cpu:       float64(n(11)+n(12)) * clockTick,
		children:  float64(n(13)+n(14)) * clockTick,
		startTime: n(19),
	}, nil
}

// procs reads every process's stat.
func procs() map[int]proc {
	out := make(map[int]proc)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue // it exited meanwhile
		}
		if p, err := parseStat(b); err == nil {
			out[pid] = p
		}
	}
	return out
}

// serverSnap is the CPU of Postfix (its master and every process under
// it) at one moment, by program name, and of the whole machine.
type serverSnap struct {
	at      time.Time
	master  int
	byPid   map[int]proc
	reaped  float64 // the master's cutime + cstime: its children that exited
	machine float64 // every CPU's busy time, seconds (/proc/stat)
}

// postfixMaster finds Postfix's master: a process named master with a
// qmgr under it.
func postfixMaster(all map[int]proc) (int, error) {
	for _, p := range all {
		if p.comm == "qmgr" && all[p.ppid].comm == "master" {
			return p.ppid, nil
		}
	}
	return 0, fmt.Errorf("no Postfix master process (a master with a qmgr child) is running")
}

func snapServer() (serverSnap, error) {
	at := time.Now()
	all := procs()
	master, err := postfixMaster(all)
	if err != nil {
		return serverSnap{}, err
	}
	s := serverSnap{at: at, master: master, byPid: make(map[int]proc), reaped: all[master].children}
	for pid, p := range all {
		for q, hops := pid, 0; q > 1 && hops < 10; q, hops = all[q].ppid, hops+1 {
			if q == master {
				s.byPid[pid] = p
				break
			}
		}
	}
	s.machine, err = machineBusy()
	return s, err
}

// machineBusy is the time every CPU spent not idle, from /proc/stat.
func machineBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy uint64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseUint(v, 10, 64)
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return float64(busy) * clockTick, nil
}

// serverUse is the CPU Postfix used between two snapshots, by program.
type serverUse struct {
	total  float64
	byComm map[string]float64 // "exited" is the processes that ended meanwhile
}

func serverDelta(a, b serverSnap) serverUse {
	u := serverUse{byComm: make(map[string]float64)}
	for pid, p := range b.byPid {
		d := p.cpu
		if q, ok := a.byPid[pid]; ok && q.startTime == p.startTime {
			d -= q.cpu
		}
		u.byComm[p.comm] += d
		u.total += d
	}
	// A process that ended was waited for by the master: its whole CPU
	// moved to the master's children's time. What it had used before a
	// was already counted in a, so take that back.
	exited := b.reaped - a.reaped
	for pid, p := range a.byPid {
		if q, ok := b.byPid[pid]; !ok || q.startTime != p.startTime {
			exited -= p.cpu
		}
	}
	if exited > 0 {
		u.byComm["exited"] += exited
		u.total += exited
	}
	return u
}

// String lists the programs by CPU, most first.
func (u serverUse) String() string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range u.byComm {
		if v >= 0.005 {
			l = append(l, kv{k, v})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%.2f", e.k, e.v)
	}
	return b.String()
}

// waitQuiet waits until Postfix has finished with the last run's
// messages (its queue manager and delivery agents: less than 5% of a CPU
// over 300 ms) and, when idle is positive, until the whole machine used
// less than idle cores over 300 ms: other people's tests share it. It
// gives up after max, and reports whether the machine was quiet.
func waitQuiet(idle float64, max time.Duration) bool {
	const step = 300 * time.Millisecond
	deadline := time.Now().Add(max)
	a, err := snapServer()
	if err != nil {
		return false
	}
	for time.Now().Before(deadline) {
		time.Sleep(step)
		b, err := snapServer()
		if err != nil {
			return false
		}
		postfix, machine := serverDelta(a, b).total, b.machine-a.machine
		if postfix < 0.05*step.Seconds() && (idle <= 0 || machine < idle*step.Seconds()) {
			return true
		}
		a = b
	}
	return false
}
