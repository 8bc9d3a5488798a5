package mqtt

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchFilter(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		match         bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b/d", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/x/c", false},
		{"a/+/c", "a/b", false},
		{"a/+", "a/", true}, // + matches an empty level
		{"+/+", "/x", true},
		{"+", "a/b", false},
		{"a/#", "a/b/c", true},
		{"a/#", "a", true}, // # matches the parent level too
		{"a/#", "b/c", false},
		{"#", "a/b/c", true},
		{"#", "", true},
		{"p/vehicles/+/command/set", "p/vehicles/V1/command/set", true},
		{"p/vehicles/+/command/set", "p/vehicles/V1/command/get", false},
		{"p/vehicles/+/command/set", "p/vehicles/V1/command/set/x", false},
		{"A/b", "a/b", false}, // topics are case-sensitive
	} {
		if got := matchFilter(tc.filter, tc.topic); got != tc.match {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.match)
		}
	}
}

// TestValidTopic checks ValidTopic, and that the fast path validTopic
// takes for plain ASCII answers the same for every topic.
func TestValidTopic(t *testing.T) {
	for _, tc := range []struct {
		topic string
		err   error
	}{
		{"a/b/c", nil},
		{"a", nil},
		{"/a//b/", nil}, // empty levels are allowed
		{"a b.c", nil},  // space and dot are MQTT topic characters (NATS refuses them: see poison)
		{"ключ/車", nil},
		{strings.Repeat("x", MaxTopicLen), nil},
		{"", ErrEmptyTopic},
		{strings.Repeat("x", MaxTopicLen+1), ErrTopicTooLong},
		{"a/+/b", ErrTopicWildcard},
		{"a/#", ErrTopicWildcard},
		{"a\x00b", ErrTopicText},
		{"a\x1fb", ErrTopicText},
		{"a\x7fb", ErrTopicText},
		{"a\u0085b", ErrTopicText}, // C1 control
		{"a\ufdd0b", ErrTopicText}, // non-character
		{"a\uffffb", ErrTopicText},
		{"bad\xffutf8", ErrTopicText},
	} {
		if err := ValidTopic(tc.topic); !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("ValidTopic(%q) = %v, want %v", shorten(tc.topic), err, tc.err)
		}
		if err := validTopic(tc.topic); (err == nil) != (tc.err == nil) || !errors.Is(err, tc.err) {
			t.Errorf("validTopic(%q) = %v, want %v", shorten(tc.topic), err, tc.err)
		}
	}
}

func TestShorten(t *testing.T) {
	if got := shorten("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("shorten(invalid UTF-8) = %q", got)
	}
	long := strings.Repeat("x", 100)
	if got := shorten(long); got != long[:64]+"…" {
		t.Errorf("shorten(100 bytes) = %q", got)
	}
}
