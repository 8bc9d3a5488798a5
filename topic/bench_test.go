package topic_test

import (
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// BenchmarkLevel is the level of a safe ASCII id, a safe Chinese one, and
// one that needs replacing (the only one that allocates).
func BenchmarkLevel(b *testing.B) {
	var l topic.Layout
	for _, id := range []string{"V12345", "沪A12345", "a/b+c#d"} {
		b.Run(id, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Level(id)
			}
		})
	}
}
