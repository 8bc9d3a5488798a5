// Package jinjatest renders Home Assistant's MQTT templates in tests with
// Python's Jinja2, the engine Home Assistant renders them with, in its
// immutable sandbox, as Home Assistant does.
package jinjatest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// Job is one template to render against one MQTT payload.
type Job struct {
	Name     string // the result's key
	Template string
	Payload  string // as the broker delivers it
}

// Python returns the path of a python3 that has jinja2, or skips t.
func Python(t testing.TB) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("jinjatest: python3 not found")
	}
	if err := exec.Command(python, "-c", "import jinja2.sandbox").Run(); err != nil {
		t.Skip("jinjatest: python3 has no jinja2")
	}
	return python
}

// script renders as Home Assistant's MQTT integration does: value is the
// payload, value_json the payload decoded when it is JSON, and left
// undefined when it is not. With StrictUndefined, anything but an "is
// defined" test on what is missing raises, where Home Assistant would log
// a template warning on every message.
const script = `
import json, sys
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
out = {}
for name, text, payload in json.load(sys.stdin):
    values = {"value": payload}
    try:
        values["value_json"] = json.loads(payload)
    except ValueError:
        pass
    out[name] = env.from_string(text).render(**values)
json.dump(out, sys.stdout)
`

// Render renders every job with the python of Python, and returns the
// results by name. A template that does not render fails t.
func Render(t testing.TB, python string, jobs []Job) map[string]string {
	t.Helper()
	in := make([][3]string, len(jobs))
	for i, j := range jobs {
		in[i] = [3]string{j.Name, j.Template, j.Payload}
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jinjatest: rendering failed: %v\n%s", err, stderr.String())
	}
	var results map[string]string
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("jinjatest: %v", err)
	}
	return results
}
