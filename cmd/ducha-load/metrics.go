package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux ABI Go supports.
const clockTicks = 100

// serverMetricNames are the /metrics series a sample keeps.
func serverMetricNames() []string {
	return []string{
		"ducha_sfu_rooms", "ducha_sfu_participants", "ducha_sfu_tracks",
		"ducha_sfu_packets_in_total", "ducha_sfu_bytes_in_total",
		"ducha_sfu_packets_out_total", "ducha_sfu_bytes_out_total",
		"ducha_sfu_queue_drops_total", "ducha_sfu_keyframe_skips_total",
		"ducha_sfu_nacks_total", "ducha_sfu_retransmits_total", "ducha_sfu_retransmit_misses_total",
		"ducha_sfu_keyframe_requests_total", "ducha_sfu_ingress_packets_total", "ducha_sfu_nacks_sent_total",
		"ducha_sfu_inline_packets_total", "ducha_sfu_reader_bursts_total", "ducha_sfu_reader_bursts_behind_total",
		"ducha_sfu_simulcast_layers", "ducha_sfu_layer_switches_total", "ducha_sfu_forward_delay_unmeasured_total",
		"process_cpu_seconds_total", "process_resident_memory_bytes",
	}
}

// serverSample is the server's state at one moment.
type serverSample struct {
	at        time.Time
	metrics   map[string]float64
	cpu       float64 // seconds, user + system
	cpuSource string  // "proc" or "metrics"
	rss       int64   // bytes
	hwm       int64   // peak RSS over the process's life (proc only; 0 otherwise)
}

// parsePromText reads the unlabelled samples of the wanted series from the
// Prometheus text format, and the buckets of the histograms the report
// reads (schedMetric, fwdDelayMetric, sendWaitMetric), keyed by the whole sample name with
// its labels (see promBuckets).
func parsePromText(r io.Reader, want []string) (map[string]float64, error) {
	w := make(map[string]bool, len(want))
	for _, n := range want {
		w[n] = true
	}
	isBucket := func(name string) bool {
		return strings.HasPrefix(name, schedMetric+"_bucket{") || strings.HasPrefix(name, fwdDelayMetric+"_bucket{") ||
			strings.HasPrefix(name, sendWaitMetric+"_bucket{")
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !w[name] && !isBucket(name) {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// procStat reads user+system CPU seconds of a process.
func procStat(pid int) (cpuSeconds float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat: fields after the command name, which is in parentheses and
// may itself hold spaces; utime and stime are fields 14 and 15.
func parseProcStat(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// procMemory reads VmRSS and VmHWM (peak RSS) in bytes.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStatus(string(b))
}

func parseProcStatus(s string) (rss, hwm int64, err error) {
	for _, line := range strings.Split(s, "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc status %s: %q", name, v)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc status: no VmRSS")
	}
	return rss, hwm, nil
}

// sample scrapes /metrics, and /proc when the server's pid is known.
func (s *serverHandle) sample(ctx context.Context) (serverSample, error) {
	smp := serverSample{at: s.now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/metrics", nil)
	if err != nil {
		return smp, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return smp, fmt.Errorf("%w: /metrics: %v", ErrServer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return smp, fmt.Errorf("%w: /metrics: HTTP %d", ErrServer, resp.StatusCode)
	}
	if smp.metrics, err = parsePromText(resp.Body, serverMetricNames()); err != nil {
		return smp, fmt.Errorf("%w: /metrics: %v", ErrServer, err)
	}
	smp.cpu, smp.cpuSource = smp.metrics["process_cpu_seconds_total"], "metrics"
	smp.rss = int64(smp.metrics["process_resident_memory_bytes"])
	if s.pid > 0 {
		cpu, err := procStat(s.pid)
		if err != nil {
			return smp, fmt.Errorf("%w: /proc of pid %d: %v", ErrServer, s.pid, err)
		}
		rss, hwm, err := procMemory(s.pid)
		if err != nil {
			return smp, fmt.Errorf("%w: /proc of pid %d: %v", ErrServer, s.pid, err)
		}
		smp.cpu, smp.cpuSource, smp.rss, smp.hwm = cpu, "proc", rss, hwm
	}
	return smp, nil
}

// selfUsage is this process's CPU seconds and peak RSS: the load tool
// shares the machine with the server, and readers must see what it used.
func selfUsage() (cpuSeconds float64, maxRSS int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), ru.Maxrss << 10
}

// machineCPU reads the machine-wide CPU time from /proc/stat: busy and total
// jiffies over all cores (the difference of two readings gives how busy the
// box was, whoever used it).
func machineCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseMachineCPU(string(b))
}

func parseMachineCPU(s string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: no cpu line")
	}
	// user nice system idle iowait irq softirq steal; guest time is
	// already inside user and nice.
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q: %w", v, err)
		}
		total += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return busy, total, nil
}

// loadAverage is the 1-minute load average from /proc/loadavg (0 if unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
