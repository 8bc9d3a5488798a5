// Command httpload measures what requests of the bridge's HTTP API cost the
// running bridge: CPU time per request and resident memory while they run,
// read from /proc of the bridge's process. docs/operations.md gives its
// numbers with a hundred thousand vehicles.
//
//	go run ./web/internal/httpload -pid $(pidof exlive2mqtt) -c 20 -n 200 \
//	    -url 'http://127.0.0.1:9883/api/vehicles' -gzip
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("httpload", flag.ContinueOnError)
	url := fs.String("url", "", "URL to request")
	pid := fs.Int("pid", 0, "process id of the bridge, to read its CPU time and memory")
	conc := fs.Int("c", 20, "requests at once")
	n := fs.Int("n", 100, "requests in all")
	gz := fs.Bool("gzip", false, "ask for gzip (Accept-Encoding: gzip)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *pid == 0 {
		return errors.New("-url and -pid are required")
	}
	cpu0, err := cpuTicks(*pid)
	if err != nil {
		return err
	}
	rss0, _ := memKiB(*pid, "VmRSS")

	var (
		next, bytes atomic.Int64
		mu          sync.Mutex
		codes       = map[int]int{}
		errs        int
		peak        = rss0
		stop        = make(chan struct{})
		sampled     = make(chan struct{})
	)
	go func() { // VmRSS every 20 ms: the peak while the requests run
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if kib, err := memKiB(*pid, "VmRSS"); err == nil {
					peak = max(peak, kib)
				}
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: *conc}}
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for next.Add(1) <= int64(*n) {
				req, _ := http.NewRequest("GET", *url, nil)
				if *gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
					continue
				}
				k, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				bytes.Add(k)
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	cpu1, err := cpuTicks(*pid)
	if err != nil {
		return err
	}
	hwm, _ := memKiB(*pid, "VmHWM")
	rss1, _ := memKiB(*pid, "VmRSS")
	ok := codes[http.StatusOK]
	cpu := time.Duration(cpu1-cpu0) * time.Second / 100 // USER_HZ
	fmt.Printf("%s gzip=%v c=%d n=%d: %v in %v, %d errors, %.1f MB received\n", *url, *gz, *conc, *n, codes, elapsed.Round(time.Millisecond), errs, float64(bytes.Load())/1e6)
	if ok > 0 {
		fmt.Printf("  bridge CPU %v in all, %.2f ms per 200 response\n", cpu, float64(cpu.Microseconds())/1000/float64(ok))
	}
	fmt.Printf("  bridge RSS %.1f MiB before, peak %.1f MiB while (sampled every 20 ms), %.1f MiB after; VmHWM %.1f MiB\n",
		float64(rss0)/1024, float64(peak)/1024, float64(rss1)/1024, float64(hwm)/1024)
	return nil
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it do not.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	s, err2 := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return u + s, errors.Join(err1, err2)
}

// memKiB returns a line of /proc/<pid>/status in KiB, such as VmRSS.
func memKiB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}
