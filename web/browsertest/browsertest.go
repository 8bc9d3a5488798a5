// Package browsertest loads the status page in headless Chromium from Go
// tests and reads back what a person would see: the vehicle table and the
// map markers. It drives the chromium binary directly (--dump-dom,
// --screenshot), so it needs no WebDriver and no extra Go module.
//
// It is a package of its own, not a _test.go file, so that other tests (the
// demo program's end-to-end test) can check a real bridge's page the same
// way the web package checks its own.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// VirtualTimeBudget is how much page time Chromium lets pass before it
// dumps the DOM or takes the screenshot: enough for the page's first polls
// (every 2 s). Virtual time does not advance while requests are pending, so
// a slow machine does not cut it short; on an idle page it runs faster than
// the wall clock.
const VirtualTimeBudget = 10 * time.Second

// runTimeout bounds one Chromium run in wall-clock time, so that a hung
// browser fails the test instead of stalling it until go test's timeout.
const runTimeout = 90 * time.Second

// Chromium returns the path of the Chromium binary: $CHROMIUM if set, else
// the first of chromium, chromium-browser, google-chrome found in $PATH.
// When there is none it skips t, unless the environment variable CI is
// "true": CI must run the browser tests, so there it fails t instead.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium in PATH (apt-get install chromium, or set CHROMIUM)"
	if os.Getenv("CI") == "true" {
		t.Fatal("browsertest: " + msg + "; CI must run the browser tests")
	}
	t.Skip("browsertest: " + msg)
	return ""
}

// DumpDOM loads url in headless Chromium, lets the page run for
// VirtualTimeBudget, and returns the serialised DOM and the messages the
// page logged to its console, which include uncaught errors and Content
// Security Policy violations.
func DumpDOM(t testing.TB, url string) (dom string, console []string) {
	t.Helper()
	stdout, stderr := run(t, "--dump-dom", url)
	return string(stdout), consoleMessages(stderr)
}

// consoleRe matches the console messages that Chromium logs to stderr with
// --enable-logging=stderr, such as
// [1:1:1127/053500.382883:INFO:CONSOLE:1] "message", source: http://… (1)
var consoleRe = regexp.MustCompile(`(?m):CONSOLE(?::\d+)?(?:\(\d+\))?\] (.*)$`)

func consoleMessages(stderr []byte) []string {
	var msgs []string
	for _, m := range consoleRe.FindAllSubmatch(stderr, -1) {
		msgs = append(msgs, string(m[1]))
	}
	return msgs
}

// Screenshot loads url in headless Chromium in a window of width×height
// CSS pixels, lets the page run for VirtualTimeBudget, and writes a PNG of
// the window to path.
func Screenshot(t testing.TB, url, path string, width, height int) {
	t.Helper()
	_, _ = run(t, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", url)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("browsertest: chromium wrote no screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("browsertest: screenshot %s is not a PNG", path)
	}
}

// run starts Chromium with the flags that keep it off the network (the
// machine has none, and background requests only slow it down) and returns
// its standard output and error.
func run(t testing.TB, args ...string) (stdout, stderr []byte) {
	t.Helper()
	bin := Chromium(t)
	profile := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append(flags(profile),
		fmt.Sprintf("--virtual-time-budget=%d", VirtualTimeBudget.Milliseconds())), args...)...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	// Chromium starts helper processes that can keep the output pipes
	// open; WaitDelay and the process group make sure none outlives the
	// run (a survivor would also keep writing into the temporary profile
	// while the test removes it).
	cmd.WaitDelay = 5 * time.Second
	setProcessGroup(cmd)

	start := time.Now()
	err := cmd.Run()
	killProcessGroup(cmd)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no result after %v: %w", runTimeout, err)
		}
		t.Fatalf("browsertest: %s %s: %v\nstderr (end):\n%s", bin, strings.Join(args, " "), err, tail(errBuf.String(), 3000))
	}
	t.Logf("browsertest: chromium %s took %v", args[0], time.Since(start).Round(time.Millisecond))
	return outBuf.Bytes(), errBuf.Bytes()
}

// flags are the flags of every Chromium run: headless, with a fresh
// profile, and kept off the network (the machine has none, and background
// requests only slow it down).
func flags(profile string) []string {
	return []string{
		"--headless",
		"--no-sandbox", // tests run as root, where the sandbox cannot start
		"--disable-gpu",
		"--disable-dev-shm-usage", // containers have a tiny /dev/shm
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--mute-audio",
		"--enable-logging=stderr", // for the page's console messages
		"--log-level=0",
		"--user-data-dir=" + profile,
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Row is one row of the status page's vehicle table, as text.
type Row struct {
	ID    string
	Code  string
	Cells []string // every cell's text, in column order
}

// Page is what a person sees on the status page, read from a DOM dump.
type Page struct {
	// Live is true when the page's last poll of the API succeeded.
	Live bool
	// Rows are the vehicle table's rows in order.
	Rows []Row
	// Markers is the number of single vehicle markers on the map.
	Markers int
	// Clusters holds the count each cluster marker on the map shows: the
	// vehicles drawn as one circle because they are close on the screen.
	Clusters []int
	// PageInfo is the text under the vehicle table that says which rows
	// of how many it shows, such as "1–50 of 100,000"; empty when the
	// table fits on one page.
	PageInfo string
	// DOM is the whole dump, for further checks.
	DOM string
	// Console holds the messages the page logged to its console.
	Console []string
}

// OnMap returns how many vehicles the map shows in its view: single
// markers and those in clusters.
func (p Page) OnMap() int {
	n := p.Markers
	for _, c := range p.Clusters {
		n += c
	}
	return n
}

// RowByID returns the row of the vehicle with the given id.
func (p Page) RowByID(id string) (Row, bool) {
	for _, r := range p.Rows {
		if r.ID == id {
			return r, true
		}
	}
	return Row{}, false
}

// Problems returns the console messages that mean the page is broken: an
// uncaught script error or a blocked Content Security Policy violation.
// Failed image loads (map tiles without internet) are not problems.
func (p Page) Problems() []string {
	var out []string
	for _, m := range p.Console {
		if strings.Contains(m, "Uncaught") || strings.Contains(m, "Content Security Policy") {
			out = append(out, m)
		}
	}
	return out
}

// LoadStatusPage loads the status page at url in headless Chromium and
// reads it back. url is the page itself, such as "http://127.0.0.1:9883/".
func LoadStatusPage(t testing.TB, url string) Page {
	t.Helper()
	dom, console := DumpDOM(t, url)
	p := ParseStatusPage(dom)
	p.Console = console
	return p
}

var (
	liveRe   = regexp.MustCompile(`<body[^>]*\bdata-live="true"`)
	markerRe = regexp.MustCompile(`<img[^>]*\bclass="[^"]*\bleaflet-marker-icon\b`)
	// markercluster draws a cluster as <div class="… marker-cluster …"><div><span>N</span></div></div>.
	clusterRe = regexp.MustCompile(`<div[^>]*\bclass="[^"]*\bmarker-cluster\b[^"]*"[^>]*>\s*<div>\s*<span>(\d+)</span>`)
	pageRe    = regexp.MustCompile(`(?s)<nav id="paging"([^>]*)>.*?<span id="vehicle-page"[^>]*>(.*?)</span>`)
	rowRe     = regexp.MustCompile(`(?s)<tr[^>]*\bdata-vehicle-id="([^"]*)"[^>]*>(.*?)</tr>`)
	cellRe    = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRe     = regexp.MustCompile(`<[^>]*>`)
)

// ParseStatusPage reads a DOM dump of the status page. It relies on the
// page's own markup (rows carry data-vehicle-id, the code is the second
// cell), which Chromium serialises predictably, so regular expressions do
// and no HTML parser module is needed.
func ParseStatusPage(dom string) Page {
	p := Page{
		Live:    liveRe.MatchString(dom),
		Markers: len(markerRe.FindAllString(dom, -1)),
		DOM:     dom,
	}
	for _, m := range clusterRe.FindAllStringSubmatch(dom, -1) {
		n, _ := strconv.Atoi(m[1]) // \d+ of a count that fits
		p.Clusters = append(p.Clusters, n)
	}
	if m := pageRe.FindStringSubmatch(dom); m != nil && !strings.Contains(m[1], "hidden") {
		p.PageInfo = html.UnescapeString(m[2])
	}
	for _, m := range rowRe.FindAllStringSubmatch(dom, -1) {
		r := Row{ID: html.UnescapeString(m[1])}
		for _, c := range cellRe.FindAllStringSubmatch(m[2], -1) {
			// Tags inside a cell are the page's own spans; the text in
			// them is escaped, so stripping tags cannot eat a code.
			r.Cells = append(r.Cells, html.UnescapeString(tagRe.ReplaceAllString(c[1], " ")))
		}
		if len(r.Cells) > 1 {
			r.Code = r.Cells[1]
		}
		p.Rows = append(p.Rows, r)
	}
	return p
}
