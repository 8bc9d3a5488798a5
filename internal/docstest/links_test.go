package docstest

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestRepositoryHasNoDeadLinks checks the repository this package lives in.
func TestRepositoryHasNoDeadLinks(t *testing.T) {
	root := os.DirFS("../..")
	if _, err := fs.Stat(root, "go.mod"); err != nil {
		t.Fatalf("../.. is not the repository root: %v", err)
	}
	r, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.problems {
		t.Error(p)
	}
	// Not a pass by finding nothing: the pages users read were read, and
	// their links followed.
	for _, page := range []string{"README.md", "docs/topics.md", "docs/settings.md", "BENCHMARKS.md"} {
		if !slices.Contains(r.pages, page) {
			t.Errorf("%s was not checked (pages checked: %v)", page, r.pages)
		}
	}
	if r.links < 20 || r.anchors < 5 || r.mentions < 5 {
		t.Errorf("checked %d links, %d of them to #anchors, and %d mentions of docs pages: too few to be the repository", r.links, r.anchors, r.mentions)
	}
	t.Logf("checked %d Markdown files, %d relative links (%d with an #anchor), %d mentions of docs pages", len(r.pages), r.links, r.anchors, r.mentions)
}

// TestCheckFindsEveryDeadLink runs the check on testdata/repo, a small tree
// with dead references of each kind beside live ones of the same kinds: it
// must report exactly the dead ones, those listed in testdata/repo.want.
func TestCheckFindsEveryDeadLink(t *testing.T) {
	r, err := check(os.DirFS("testdata/repo"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/repo.want")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(b)), "\n")
	if !slices.Equal(r.problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(r.problems, "\n"), strings.Join(want, "\n"))
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Quick start":                            "quick-start",
		"Health, metrics and the status page":    "health-metrics-and-the-status-page",
		"OwnTracks in: a phone as a vehicle":     "owntracks-in-a-phone-as-a-vehicle",
		"Node-RED: a fleet map and a command":    "node-red-a-fleet-map-and-a-command",
		"`MQTT_STORE_DIR` and the [store](x.md)": "mqtt_store_dir-and-the-store",
		"What is guaranteed, and what is not":    "what-is-guaranteed-and-what-is-not",
		"Telegraf: positions into InfluxDB 2":    "telegraf-positions-into-influxdb-2",
		"上海 (Shanghai) 沪A":                       "上海-shanghai-沪a",
		"a  b":                                   "a--b",
		"**Bold** <em>tag</em> C++ & 100%":       "bold-tag-c--100",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// report is what check found: the dead references, and what it looked at.
type report struct {
	problems []string // "file:line: what is dead", in file order
	pages    []string // the Markdown files read
	links    int      // relative links followed
	anchors  int      // of which with an #anchor
	mentions int      // docs pages named outside links
}

// skipDirs are never read: git's own files, test fixtures (made to hold
// dead links, among other things), and tools installed into the tree.
var skipDirs = map[string]bool{".git": true, "testdata": true, "node_modules": true}

// maxFile is the largest file read: larger ones are built binaries,
// profiles and the like, not text that names a page.
const maxFile = 1 << 20

// check reads every file under fsys: every relative link of every Markdown
// file must lead to a file that exists, and to a heading of it when the link
// has an #anchor; every docs/….md a text file names must exist, with its
// heading when an #anchor follows.
func check(fsys fs.FS) (report, error) {
	var r report
	var files []string
	// paths holds every path walked, spelled as it is: GitHub's paths are
	// case-sensitive, whatever the file system of the machine running this.
	paths := map[string]bool{".": true}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths[p] = true
		switch {
		case skipDirs[d.Name()] && p != ".":
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil // a worktree's .git is a file
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Size() <= maxFile {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	pages := make(map[string]*page)
	for _, f := range files {
		if strings.EqualFold(path.Ext(f), ".md") {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				return r, err
			}
			pages[f] = parse(string(b))
			r.pages = append(r.pages, f)
		}
	}
	// target checks the file (relative to the root) and the anchor.
	target := func(file, frag string) string {
		if !paths[file] && !underSkipped(file, paths) {
			return "no such file"
		}
		st, err := fs.Stat(fsys, file)
		switch {
		case err != nil:
			return "no such file"
		case frag == "" || st.IsDir():
			return ""
		}
		pg, ok := pages[file]
		if !ok {
			return "" // an anchor into code (#L10) is GitHub's business
		}
		if !pg.anchors[frag] {
			return fmt.Sprintf("%s has no heading #%s", file, frag)
		}
		return ""
	}
	for _, f := range files {
		if pg, ok := pages[f]; ok {
			for _, l := range pg.links {
				file, frag, skip, bad := resolve(f, l.target)
				if skip {
					continue
				}
				r.links++
				if frag != "" {
					r.anchors++
				}
				if bad == "" {
					bad = target(file, frag)
				}
				if bad != "" {
					r.problems = append(r.problems, fmt.Sprintf("%s:%d: dead link %q: %s", f, l.line, l.target, bad))
				}
			}
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return r, err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue // binary
		}
		_, markdown := pages[f]
		for i, line := range strings.Split(string(b), "\n") {
			if markdown {
				line = withoutTargets(line) // links are checked above, relative to their file
			}
			for _, m := range mentionRE.FindAllStringSubmatchIndex(line, -1) {
				r.mentions++
				name, frag := line[m[2]:m[3]], ""
				if m[4] >= 0 {
					frag = line[m[4]+1 : m[5]]
				}
				if bad := target(name, frag); bad != "" {
					r.problems = append(r.problems, fmt.Sprintf("%s:%d: names %s: %s", f, i+1, line[m[2]:m[1]], bad))
				}
			}
		}
	}
	return r, nil
}

// underSkipped tells whether p is inside a directory the walk skipped
// (such as a testdata directory), where only the file system can tell.
func underSkipped(p string, paths map[string]bool) bool {
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if skipDirs[path.Base(dir)] && paths[dir] {
			return true
		}
	}
	return false
}

// mentionRE finds a docs page named from the repository root, such as
// docs/deployment.md in a comment, with its #anchor if one follows. The name
// must start a path: a/docs/x.md or ../docs/x.md is some other file.
var mentionRE = regexp.MustCompile(`(?:^|[^\w./-])(docs/[\w-]+\.md)(#[\p{L}\p{N}_-]+)?`)

// resolve turns the target of a link in file into a path from the root and
// an anchor. skip is true for links that leave the repository on purpose
// (https:, mailto:, //host); bad says why a target cannot be resolved.
func resolve(file, target string) (p, frag string, skip bool, bad string) {
	if schemeRE.MatchString(target) || strings.HasPrefix(target, "//") {
		return "", "", true, ""
	}
	target, frag, _ = strings.Cut(target, "#")
	target, _, _ = strings.Cut(target, "?")
	target, err := url.PathUnescape(target)
	if err != nil {
		return "", frag, false, err.Error()
	}
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	switch {
	case target == "":
		p = file
	case strings.HasPrefix(target, "/"): // GitHub: from the repository root
		p = path.Clean(strings.TrimLeft(target, "/"))
	default:
		p = path.Join(path.Dir(file), target)
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", frag, false, "outside the repository"
	}
	return p, frag, false, ""
}

// withoutTargets blanks the link targets of a Markdown line, keeping the
// rest where it was.
func withoutTargets(line string) string {
	b := []byte(line)
	for _, re := range linkREs {
		for _, m := range re.FindAllStringSubmatchIndex(line, -1) {
			for k := m[2]; k < m[3]; k++ {
				b[k] = ' '
			}
		}
	}
	return string(b)
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// page is what parse found in one Markdown file.
type page struct {
	anchors map[string]bool
	links   []link
}

type link struct {
	line   int
	target string
}

var (
	atxRE     = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	setextRE  = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	listRE    = regexp.MustCompile(`^\s*(?:[-*+>|]|\d+[.)])`)
	fenceRE   = regexp.MustCompile("^\\s*(`{3,}|~{3,})")
	inlineRE  = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^\s)>]*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	refDefRE  = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	htmlRefRE = regexp.MustCompile(`(?i)\b(?:href|src)\s*=\s*"([^"]*)"`)
	htmlIDRE  = regexp.MustCompile(`(?i)<[a-z][^>]*\b(?:id|name)\s*=\s*"([^"]+)"`)
	linkREs   = []*regexp.Regexp{inlineRE, refDefRE, htmlRefRE} // the target is group 1
)

// parse finds the headings (as GitHub's anchors) and the link targets of a
// Markdown file, outside fenced code blocks and code spans.
func parse(text string) *page {
	pg := &page{anchors: make(map[string]bool)}
	seen := make(map[string]int)
	heading := func(h string) {
		s := slug(h)
		if n := seen[s]; n > 0 {
			pg.anchors[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			pg.anchors[s] = true
		}
		seen[s]++
	}
	var fence, prev string // the open fence's marker; the previous paragraph line
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, "\r")
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(line) == m[1]:
				fence = ""
			}
			prev = ""
			continue
		}
		if fence != "" {
			continue
		}
		for _, m := range htmlIDRE.FindAllStringSubmatch(line, -1) {
			pg.anchors[m[1]] = true
		}
		switch {
		case setextRE.MatchString(line) && prev != "":
			heading(prev)
			prev = ""
			continue
		case atxRE.MatchString(line):
			heading(atxRE.FindStringSubmatch(line)[1])
			prev = ""
		case strings.TrimSpace(line) == "" || listRE.MatchString(line):
			prev = ""
		default:
			prev = line
		}
		code := withoutCode(line)
		for _, re := range linkREs {
			for _, m := range re.FindAllStringSubmatch(code, -1) {
				if m[1] != "" {
					pg.links = append(pg.links, link{i + 1, m[1]})
				}
			}
		}
	}
	return pg
}

// withoutCode removes the code spans of a line: `[a](b)` is not a link. A
// span opens with a run of backticks and closes with a run of the same
// length; a run that is never closed is text.
func withoutCode(line string) string {
	run := func(s string) int { return len(s) - len(strings.TrimLeft(s, "`")) }
	var b strings.Builder
	for {
		i := strings.IndexByte(line, '`')
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		n := run(line[i:])
		end := -1
		for j := i + n; j < len(line); {
			k := strings.IndexByte(line[j:], '`')
			if k < 0 {
				break
			}
			m := run(line[j+k:])
			if m == n {
				end = j + k
				break
			}
			j += k + m
		}
		if end < 0 {
			b.WriteString(line[:i+n])
			line = line[i+n:]
			continue
		}
		b.WriteString(line[:i])
		line = line[end+n:]
	}
}

var (
	mdLinkRE  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTagRE = regexp.MustCompile(`<[^>]+>`)
)

// slug is GitHub's anchor for a heading: the text as shown, lower case,
// with spaces made hyphens and every other character that is not a letter,
// a digit, a mark, - or _ dropped. A second heading with the same slug gets
// -1, a third -2 (parse adds those).
func slug(heading string) string {
	text := mdLinkRE.ReplaceAllString(heading, "$1")
	text = htmlTagRE.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
