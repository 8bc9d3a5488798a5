package geofence

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// rtree is a static R-tree of the fences' bounds, packed by
// sort-tile-recursive (Leutenegger et al., 1997): every node but the last
// of a level is full, and nodes hold fences that are near each other, so a
// point visits about one node per level.
//
// Why not orb/quadtree: it indexes points, and a fence is a box. Finding
// the boxes that hold a point with it means storing each fence's centre
// and searching a bound padded by the largest fence's size, so one
// province-sized fence would make every search look at every fence. A
// static tree fits a Set, which never changes (a reload builds a new one).
type rtree struct {
	// levels[0] holds one entry per fence, lo being its index in
	// Set.fences; levels[k] holds the nodes over levels[k-1], each over
	// entries [lo, hi) of it. The last level has at most nodeSize entries,
	// and a search starts with all of them.
	levels [][]entry
}

type entry struct {
	bound  orb.Bound
	lo, hi int32
}

// nodeSize is how many entries a node holds: 16, as in flatbush. A node's
// entries fill ten cache lines, and a tree of 1 000 fences is three
// levels deep (1 000, 63, 4).
const nodeSize = 16

func buildTree(bounds []orb.Bound) rtree {
	level := make([]entry, len(bounds))
	for i, b := range bounds {
		level[i] = entry{bound: b, lo: int32(i), hi: int32(i + 1)}
	}
	t := rtree{levels: [][]entry{level}}
	for len(level) > nodeSize {
		// Sorting a level in place is safe: each entry carries its own
		// range of the level below, and the level above is built after.
		tile(level)
		parents := make([]entry, 0, (len(level)+nodeSize-1)/nodeSize)
		for lo := 0; lo < len(level); lo += nodeSize {
			hi := min(lo+nodeSize, len(level))
			b := level[lo].bound
			for _, e := range level[lo+1 : hi] {
				b = b.Union(e.bound)
			}
			parents = append(parents, entry{bound: b, lo: int32(lo), hi: int32(hi)})
		}
		t.levels = append(t.levels, parents)
		level = parents
	}
	return t
}

// tile orders entries so that each run of nodeSize is a tile: sorted by
// the longitude of their centres into vertical slices of about
// sqrt(nodes) nodes each, and each slice sorted by latitude.
func tile(es []entry) {
	nodes := (len(es) + nodeSize - 1) / nodeSize
	strips := int(math.Ceil(math.Sqrt(float64(nodes))))
	per := strips * nodeSize
	sortBy(es, 0)
	for lo := 0; lo < len(es); lo += per {
		sortBy(es[lo:min(lo+per, len(es))], 1)
	}
}

func sortBy(es []entry, axis int) {
	slices.SortFunc(es, func(a, b entry) int {
		ca := a.bound.Min[axis] + a.bound.Max[axis]
		cb := b.bound.Min[axis] + b.bound.Max[axis]
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return int(a.lo - b.lo) // a stable order, for tests
	})
}
