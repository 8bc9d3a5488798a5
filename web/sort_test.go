package web

import (
	"slices"
	"testing"
)

func TestCompareIDsCountsLikePeople(t *testing.T) {
	ids := []string{"V10", "abc", "10", "V2", "9", "V1", "010", "沪A2", "沪A10", ""}
	slices.SortFunc(ids, compareIDs)
	want := []string{"", "9", "010", "10", "V1", "V2", "V10", "abc", "沪A2", "沪A10"}
	if !slices.Equal(ids, want) {
		t.Fatalf("sorted = %q, want %q", ids, want)
	}
}
