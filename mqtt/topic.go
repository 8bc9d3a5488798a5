package mqtt

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxTopicLen is the longest topic MQTT can carry, in bytes.
const MaxTopicLen = 65535

// Topic errors.
var (
	ErrEmptyTopic    = errors.New("mqtt: empty topic")
	ErrTopicTooLong  = errors.New("mqtt: topic longer than 65535 bytes")
	ErrTopicWildcard = errors.New("mqtt: topic holds a wildcard (+ or #)")
	ErrTopicText     = errors.New("mqtt: topic is not valid UTF-8 or holds a control character")
)

// levelSafe reports whether s may be one level of a topic: no '/', '+',
// '#', control character, invalid byte or Unicode non-character (package
// topic's Level makes any text into such a level).
func levelSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return levelSafeSlow(s[i:])
		}
		if c < 0x20 || c == 0x7f || c == '/' || c == '+' || c == '#' {
			return false
		}
	}
	return true
}

func levelSafeSlow(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !levelRune(r) {
			return false
		}
		i += size
	}
	return true
}

func levelRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f, r == '/', r == '+', r == '#':
		return false
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return false // non-characters, which Mosquitto refuses
	}
	return true
}

// ValidTopic checks a topic to publish to: not empty, at most MaxTopicLen
// bytes, valid UTF-8 without control characters or non-characters, and no
// wildcard.
func ValidTopic(topic string) error {
	switch {
	case topic == "":
		return ErrEmptyTopic
	case len(topic) > MaxTopicLen:
		return ErrTopicTooLong
	case strings.ContainsAny(topic, "+#"):
		return ErrTopicWildcard
	}
	for _, level := range strings.Split(topic, "/") {
		if !levelSafe(level) {
			return ErrTopicText
		}
	}
	return nil
}

// matchFilter reports whether topic matches the subscription filter, with
// its + and # wildcards.
func matchFilter(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			return true
		case i >= len(ts):
			return false
		case f != "+" && f != ts[i]:
			return false
		}
	}
	return len(fs) == len(ts)
}

// validTopic is ValidTopic, with a fast path for a topic of printable ASCII
// without wildcards (a position topic whose vehicle id is ASCII): one pass
// and no allocation, where ValidTopic splits the topic into its levels.
func validTopic(topic string) error {
	if len(topic) == 0 || len(topic) > MaxTopicLen {
		return ValidTopic(topic)
	}
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; c < 0x20 || c > 0x7e || c == '+' || c == '#' {
			return ValidTopic(topic)
		}
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
