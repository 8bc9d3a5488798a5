package web

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBuildVehicleList is what a change of the list costs with a
// hundred thousand vehicles: sort, encode each once, hash, and gzip (made
// on the first request that takes gzip).
//
//	go test ./web -run '^$' -bench BuildVehicleList -benchmem
func BenchmarkBuildVehicleList(b *testing.B) {
	vs := make([]Vehicle, 100_000)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range vs {
		lat, lng, speed := -80+float64(i%161), -179.5+float64(i%360), float64(i%120)
		vs[i] = Vehicle{ID: "V" + strconv.Itoa(i), Code: fmt.Sprintf("浙A·%05d", i), Topic: "exlive/vehicles/V" + strconv.Itoa(i) + "/position",
			Lat: &lat, Lng: &lng, Speed: &speed, Time: &at}
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buildSnapshot(1, vs)
		}
	})
	b.Run("encode+gzip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buildSnapshot(1, vs).gzipped()
		}
	})
}
