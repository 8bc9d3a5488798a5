package bridge

import (
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

func TestRegistryLevels(t *testing.T) {
	for _, order := range [][]string{{"a/b", "a_b"}, {"a_b", "a/b"}} {
		r := newRegistry(topic.Layout{Prefix: "p"}, 100)
		for _, id := range order {
			r.get(id)
		}
		if v, ambiguous := r.lookup("a_b"); v != nil || !ambiguous {
			t.Errorf("%v: lookup(a_b) = %v, %v; want ambiguous", order, v, ambiguous)
		}
	}
	r := newRegistry(topic.Layout{Prefix: "p/q"}, 100)
	for _, id := range []string{"V1", "x+y", "沪A1", "n\x00"} {
		v, created, collision := r.get(id)
		if !created || collision {
			t.Fatalf("get(%q) = created %v, collision %v", id, created, collision)
		}
		if v2, _, _ := r.get(id); v2 != v {
			t.Fatalf("get(%q) twice gave two vehicles", id)
		}
	}
	for level, id := range map[string]string{"V1": "V1", "x_y": "x+y", "沪A1": "沪A1", "n_": "n\x00"} {
		v, ambiguous := r.lookup(level)
		if v == nil || ambiguous || v.id != id {
			t.Errorf("lookup(%q) = %v, %v; want %q", level, v, ambiguous, id)
			continue
		}
		if got := string(r.topics.AppendPosition(nil, v.id)); r.level(v) != level || got != "p/q/vehicles/"+level+"/position" {
			t.Errorf("%q: level %q, topic %q", id, r.level(v), got)
		}
	}
	if v, _ := r.lookup("x+y"); v != nil {
		t.Error("an id that is not a level was found as a level")
	}
	if v, _ := r.lookup("nobody"); v != nil {
		t.Error("unknown level found")
	}
	small := newRegistry(topic.Layout{Prefix: "p"}, 1)
	small.get("a")
	if v, _, _ := small.get("b"); v != nil {
		t.Error("a full registry added a vehicle")
	}
}
