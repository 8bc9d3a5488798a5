package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The files an operator imports, checked here against the program.
const (
	dashboardFile  = "../../deploy/grafana/exlive2mqtt.json"
	alertsFile     = "../../deploy/prometheus/alerts.yml"
	operationsFile = "../../docs/operations.md"
)

// prometheusSeries are the series Prometheus makes for every target itself:
// a query may name them though the bridge does not export them.
var prometheusSeries = map[string]bool{"up": true}

// TestDeployQueriesNameExportedMetrics runs the program against the
// simulated platform and the embedded broker, with traffic in both
// directions (positions, and a command with its answer, so that the request
// counters and the latency histogram have series), reads /metrics, and
// checks that every metric the Grafana dashboard and the alerting rules name
// is one the bridge exports.
func TestDeployQueriesNameExportedMetrics(t *testing.T) {
	exported := scrapeRunningBridge(t)
	if len(exported) < 30 {
		t.Fatalf("/metrics exported %d metric families, want the bridge's, Go's and the process's", len(exported))
	}
	// exported holds the names a query can use: a histogram's _bucket,
	// _sum and _count series, not its family name.
	has := func(name string) bool { return exported[name] || prometheusSeries[name] }

	queries := append(dashboardQueries(t), alertQueries(t)...)
	named := make(map[string]bool)
	for _, q := range queries {
		names, err := promqlMetricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v in %q", q.where, err, q.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s names no metric: %q", q.where, q.expr)
		}
		for _, n := range names {
			named[n] = true
			if !has(n) {
				t.Errorf("%s names %s, which the bridge does not export (expression %q)", q.where, n, q.expr)
			}
		}
	}
	t.Logf("%d expressions (dashboard and alerts) name %d metrics; the bridge exports %d series names", len(queries), len(named), len(exported))
	// The dashboard shows every part of the bridge: a metric family added
	// later without a panel is worth a look, not a failure; the ones the
	// issue asked for must be there.
	for _, want := range []string{
		"exlive_session_state", "mqtt_connected", "exlive_positions_received_total",
		"bridge_positions_published_total", "mqtt_queue_depth", "mqtt_messages_dropped_total",
		"bridge_positions_dropped_total", "mqtt_publish_errors_total", "bridge_requests_total",
		"bridge_request_duration_seconds_bucket", "exlive_newest_position_age_seconds",
		"bridge_vehicles_online", "bridge_events_total",
	} {
		if !named[want] {
			t.Errorf("neither the dashboard nor the alerts use %s", want)
		}
	}
}

// scrapeRunningBridge runs the program, drives traffic, and returns the
// series names its /metrics has.
func scrapeRunningBridge(t *testing.T) map[string]bool {
	t.Helper()
	sim := exlivesim.New(exlivesim.Config{Vehicles: 3, Rate: 30})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	brokerURL := brokertest.Embedded(t).URL()
	const prefix = "dash"
	sub := brokertest.Subscribe(t, brokerURL, prefix+"/#")
	env := map[string]string{
		"EXLIVE_ADDR": sim.Addr(), "EXLIVE_USER": exlivesim.DefaultUser, "EXLIVE_PASS": exlivesim.DefaultPass,
		"EXLIVE_INVENTORY_QUIET": "50ms",
		"MQTT_URL":               brokerURL, "MQTT_TOPIC_PREFIX": prefix, "MQTT_CLIENT_ID": brokertest.ClientID(t),
		"HTTP_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json",
	}
	logs := newMTWriter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, mtEnviron(env), io.Discard, logs) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return")
		}
	}()
	addr := logs.wait(t, 0, regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"[^\n]*"message":"http server listening"`))
	sub.WaitTopic(10*time.Second, prefix+"/vehicles/V1/position")
	sub.WaitTopic(10*time.Second, prefix+"/bridge/vehicles")
	sub.Publish(prefix+"/vehicles/V1/command/set", []byte(`{"data":"STOP","request_id":"d1"}`), false)
	if r := sub.WaitTopic(10*time.Second, prefix+"/vehicles/V1/command/result"); !strings.Contains(r.Payload, `"d1"`) {
		t.Fatalf("command result %s", r.Payload)
	}

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	names := make(map[string]bool)
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	if !names["bridge_request_duration_seconds_bucket"] || !names["bridge_requests_total"] {
		t.Fatalf("after a command, /metrics lacks the request counters or the latency histogram")
	}
	return names
}

type query struct{ where, expr string }

// grafanaDashboard is the part of the dashboard JSON the tests read.
type grafanaDashboard struct {
	Inputs        []json.RawMessage           `json:"__inputs"`
	Requires      []struct{ Type, ID string } `json:"__requires"`
	SchemaVersion int                         `json:"schemaVersion"`
	Title         string                      `json:"title"`
	UID           string                      `json:"uid"`
	ID            *int                        `json:"id"`
	Panels        []grafanaPanel
	Templating    struct {
		List []struct {
			Name, Type string
			Query      json.RawMessage
			Datasource *grafanaDatasource
			Definition string
		}
	}
}

type grafanaPanel struct {
	ID         int
	Type       string
	Title      string
	Datasource *grafanaDatasource
	GridPos    struct{ H, W, X, Y int }
	Panels     []grafanaPanel // a collapsed row's
	Targets    []struct {
		Datasource *grafanaDatasource
		Expr       string
		RefID      string `json:"refId"`
	}
}

type grafanaDatasource struct{ Type, UID string }

func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels is every panel, those inside collapsed rows too.
func (d grafanaDashboard) allPanels() []grafanaPanel {
	var out []grafanaPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := readDashboard(t)
	var qs []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("dashboard panel %q query %s", p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// label_values(EXPR, label): the series selector is what a
		// metric must match.
		sel, ok := strings.CutPrefix(v.Definition, "label_values(")
		if !ok {
			t.Errorf("dashboard variable %s: definition %q is not label_values(…)", v.Name, v.Definition)
			continue
		}
		if i := strings.LastIndexByte(sel, ','); i >= 0 {
			sel = sel[:i]
		}
		qs = append(qs, query{"dashboard variable " + v.Name, sel})
	}
	if len(qs) < 20 {
		t.Fatalf("%s: %d queries found, want the whole dashboard's", dashboardFile, len(qs))
	}
	return qs
}

// alertRules is the part of a Prometheus rule file the tests read.
type alertRules struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert, Record, Expr string
			Annotations         map[string]string
		}
	}
}

func readAlerts(t *testing.T) alertRules {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var r alertRules
	if err := yaml.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	return r
}

func alertQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	// An annotation may query too: {{ with printf "expr{instance=%q}" … | query }}.
	printf := regexp.MustCompile(`printf "((?:[^"\\]|\\.)*)"[^}]*\| *query`)
	for _, g := range readAlerts(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alert " + r.Alert + r.Record, r.Expr})
			for k, a := range r.Annotations {
				for _, m := range printf.FindAllStringSubmatch(a, -1) {
					format, err := strconv.Unquote(`"` + m[1] + `"`)
					if err != nil {
						t.Fatalf("alert %s annotation %s: %v", r.Alert, k, err)
					}
					qs = append(qs, query{"alert " + r.Alert + " annotation " + k, strings.ReplaceAll(format, "%q", `"x"`)})
				}
			}
		}
	}
	if len(qs) < 8 {
		t.Fatalf("%s: %d rules found", alertsFile, len(qs))
	}
	return qs
}

// TestDashboardIsImportable checks what Grafana needs to import the
// dashboard into any Prometheus data source: one data-source variable that
// every panel and query uses, unique panel ids, panels inside the 24-column
// grid and not on top of each other.
func TestDashboardIsImportable(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 39 || d.Title == "" || d.UID == "" || d.ID != nil {
		t.Errorf("schemaVersion %d, title %q, uid %q, id %v: want a current schema (39 and later), a title, a uid and no id",
			d.SchemaVersion, d.Title, d.UID, d.ID)
	}
	if d.Inputs == nil {
		t.Error("no __inputs: Grafana's export for sharing has one (empty when the data source is a variable)")
	}
	var dsVars int
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			dsVars++
			if v.Name != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("data-source variable %s of %s, want datasource of prometheus", v.Name, v.Query)
			}
		}
		if v.Datasource != nil && v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s uses the data source %q, want ${datasource}", v.Name, v.Datasource.UID)
		}
	}
	if dsVars != 1 {
		t.Errorf("%d data-source variables, want 1", dsVars)
	}
	requires := make(map[string]bool)
	for _, r := range d.Requires {
		requires[r.Type+"/"+r.ID] = true
	}
	if !requires["datasource/prometheus"] || !requires["grafana/grafana"] {
		t.Errorf("__requires lacks grafana or the prometheus data source: %v", d.Requires)
	}

	ids := make(map[int]bool)
	var cells []grafanaPanel
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		}
		if !requires["panel/"+p.Type] {
			t.Errorf("panel %q: its type %s is not in __requires", p.Title, p.Type)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: data source %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := make(map[string]bool)
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: data source %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q empty or twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if !strings.Contains(tg.Expr, `job="$job"`) || !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q query %s is not limited to $job and $instance: %q", p.Title, tg.RefID, tg.Expr)
			}
		}
		cells = append(cells, p)
	}
	for i, a := range cells {
		for _, b := range cells[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
	}
}

// TestOperationsDocsDescribeAlertsAndDashboard keeps docs/operations.md
// equal to the files: a section per alert, which its runbook_url points at,
// and a table with a row per dashboard panel.
func TestOperationsDocsDescribeAlertsAndDashboard(t *testing.T) {
	b, err := os.ReadFile(operationsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, alerts, ok := strings.Cut(doc, "\n## Alerts\n")
	if !ok {
		t.Fatalf("%s has no ## Alerts section", operationsFile)
	}
	alerts, _, _ = strings.Cut(alerts, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^### (\S+)$`).FindAllStringSubmatch(alerts, -1) {
		documented = append(documented, m[1])
	}
	var defined []string
	for _, g := range readAlerts(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			defined = append(defined, r.Alert)
			for _, k := range []string{"summary", "description"} {
				if r.Annotations[k] == "" {
					t.Errorf("alert %s has no %s", r.Alert, k)
				}
			}
			want := "https://github.com/exlive2mqtt/exlive2mqtt/blob/main/docs/operations.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook_url"] != want {
				t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	sort.Strings(documented)
	sort.Strings(defined)
	if !slices.Equal(documented, defined) {
		t.Errorf("%s ## Alerts has sections %v, alerts.yml the alerts %v", operationsFile, documented, defined)
	}

	_, dash, ok := strings.Cut(doc, "\n## Dashboard\n")
	if !ok {
		t.Fatalf("%s has no ## Dashboard section", operationsFile)
	}
	dash, _, _ = strings.Cut(dash, "\n## ")
	var inTable []string
	for _, m := range regexp.MustCompile(`(?m)^\| ([^|]+?) \| ([^|]+?) \|`).FindAllStringSubmatch(dash, -1) {
		if m[2] == "Panel" || strings.HasPrefix(m[2], "---") {
			continue
		}
		inTable = append(inTable, m[1]+" / "+m[2])
	}
	var panels []string
	row := ""
	for _, p := range readDashboard(t).allPanels() {
		if p.Type == "row" {
			row = p.Title
			continue
		}
		panels = append(panels, row+" / "+p.Title)
	}
	if !slices.Equal(inTable, panels) {
		t.Errorf("%s ## Dashboard table lists (row / panel)\n  %q\nthe dashboard has\n  %q", operationsFile, inTable, panels)
	}
}

// promqlMetricNames returns the metric names a PromQL expression selects,
// in order, each once. It knows enough of PromQL for rules and dashboards:
// it skips strings, label matchers, ranges and Grafana's $variables; a name
// followed by "(" is a function, one of the aggregation operators or
// keywords is not a metric, and the label lists after by, without, on,
// ignoring, group_left and group_right are skipped. A selector by
// {__name__=…} is an error rather than a name it cannot see.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	seen := make(map[string]bool)
	skipLabelList := false
	depth := 0 // of parentheses
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'' || c == '`':
			end, err := promqlStringEnd(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{' || c == '[':
			end, err := promqlGroupEnd(expr, i)
			if err != nil {
				return nil, err
			}
			if c == '{' && strings.Contains(expr[i:end], "__name__") {
				return nil, errors.New("a selector by __name__")
			}
			i = end
		case c == '(' && skipLabelList:
			end, err := promqlGroupEnd(expr, i)
			if err != nil {
				return nil, err
			}
			skipLabelList = false
			i = end
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(expr) && expr[i] == '{' {
				end, err := promqlGroupEnd(expr, i)
				if err != nil {
					return nil, err
				}
				i = end
			} else {
				for i < len(expr) && promqlIdentChar(expr[i]) {
					i++
				}
			}
		case c >= '0' && c <= '9' || c == '.': // a number or a duration
			for i < len(expr) && (promqlIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
		case promqlIdentStart(c):
			start := i
			for i < len(expr) && promqlIdentChar(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := i
			for next < len(expr) && (expr[next] == ' ' || expr[next] == '\t' || expr[next] == '\n') {
				next++
			}
			switch {
			case promqlLabelListKeywords[word]:
				skipLabelList = next < len(expr) && expr[next] == '('
			case promqlKeywords[word] || promqlAggregations[word]:
			case next < len(expr) && expr[next] == '(': // a function
			default:
				if !seen[word] {
					seen[word] = true
					names = append(names, word)
				}
			}
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ')' at %d", i)
			}
			i++
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unbalanced %q at %d", c, i)
		default: // operators and commas
			i++
		}
	}
	if depth != 0 {
		return nil, errors.New("unclosed '('")
	}
	return names, nil
}

var (
	promqlLabelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	promqlKeywords          = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true, "Inf": true, "NaN": true}
	promqlAggregations      = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
		"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	}
)

func promqlIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func promqlIdentChar(c byte) bool { return promqlIdentStart(c) || c >= '0' && c <= '9' }

// promqlStringEnd returns the index after the string literal at i.
func promqlStringEnd(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// promqlGroupEnd returns the index after the bracket that closes the one at
// i, skipping strings and nested brackets.
func promqlGroupEnd(s string, i int) (int, error) {
	closing := map[byte]byte{'(': ')', '{': '}', '[': ']'}
	var stack []byte
	for j := i; j < len(s); j++ {
		switch c := s[j]; c {
		case '"', '\'', '`':
			end, err := promqlStringEnd(s, j)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case '(', '{', '[':
			stack = append(stack, closing[c])
		case ')', '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return 0, fmt.Errorf("unbalanced %q at %d", c, j)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unclosed %q at %d", s[i], i)
}

func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
		err  bool
	}{
		{expr: `up{job="exlive2mqtt"} == 0`, want: []string{"up"}},
		{expr: `absent(up{job="exlive2mqtt"})`, want: []string{"up"}},
		{expr: `rate(bridge_requests_total{outcome=~"timeout|lost"}[15m])`, want: []string{"bridge_requests_total"}},
		{
			expr: `histogram_quantile(0.95, sum by (le) (rate(bridge_request_duration_seconds_bucket{job="$job", instance=~"$instance"}[$__rate_interval])))`,
			want: []string{"bridge_request_duration_seconds_bucket"},
		},
		{expr: `sum(rate(x_sum[5m])) by (le, cmd) / sum(rate(x_count[5m])) without (cmd)`, want: []string{"x_sum", "x_count"}},
		{expr: `mqtt_queue_depth > 0.1 * mqtt_queue_limit and deriv(mqtt_queue_depth[10m]) > 0`, want: []string{"mqtt_queue_depth", "mqtt_queue_limit"}},
		{
			expr: "(age > 600 or (age < 0 and on (job, instance) time() - process_start_time_seconds > 600))\nand on(job,instance) state{s=\"a\"} == bool 1",
			want: []string{"age", "process_start_time_seconds", "state"},
		},
		{expr: `a / ignoring(state) group_left(version) b offset 5m`, want: []string{"a", "b"}},
		{expr: `a * on (instance) group_right b`, want: []string{"a", "b"}},
		{expr: `topk(3, sum by (reason) (increase(c{r="}"}[1h:5m])))`, want: []string{"c"}},
		{expr: `label_replace(m, "dst", "$1", "src", "(.*)") @ 1609746000`, want: []string{"m"}},
		{expr: `count_values("v", build_info) > 1e-3`, want: []string{"build_info"}},
		{expr: `3 * s{state="logged_in"} + ignoring (state) 2 * s{state="connecting"}`, want: []string{"s"}},
		{expr: `x:rate5m{a='it''s'}`, want: []string{"x:rate5m"}}, // two strings side by side
		{expr: `x{a="b}`, err: true}, // an unterminated string
		{expr: `{__name__="hidden"}`, err: true},
		{expr: `rate(x[5m]`, err: true},
		{expr: `rate(x[5m]))`, err: true},
		{expr: `rate(x{a="b"]`, err: true},
	} {
		got, err := promqlMetricNames(c.expr)
		if (err != nil) != c.err {
			t.Errorf("%q: error %v, want an error: %v", c.expr, err, c.err)
			continue
		}
		if !c.err && !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.expr, got, c.want)
		}
	}
}
