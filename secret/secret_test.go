package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestStringNeverPrintsValue(t *testing.T) {
	s := String("hunter2")
	outs := []string{
		s.String(),
		fmt.Sprint(s),
		fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s),
		fmt.Sprintf("%v", struct{ P String }{s}),
		fmt.Sprintf("%+v", &struct{ P String }{s}),
	}
	b, err := json.Marshal(struct{ P String }{s})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ P string }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	outs = append(outs, back.P)
	for _, out := range outs {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret leaked in %q", out)
		}
		if !strings.Contains(out, "<secret>") {
			t.Errorf("output %q does not show the redaction marker", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
	if String("").String() != "" {
		t.Fatal("empty secret should print empty")
	}
}
