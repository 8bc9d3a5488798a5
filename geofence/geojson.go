package geofence

import (
	"strconv"

	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
	"github.com/paulmach/orb"
)

// AppendGeoJSON appends the set as a GeoJSON FeatureCollection, in name
// order, for a map to draw: each fence a Feature with its name and, when
// it has them, its speed_limit, vehicles and radius; a Polygon, a
// MultiPolygon, or a circle's centre as a Point. Parse reads it back into
// the same fences. A nil set is an empty collection.
func (s *Set) AppendGeoJSON(dst []byte) []byte {
	dst = append(dst, `{"type":"FeatureCollection","features":[`...)
	for i := range s.Len() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = s.fences[i].appendFeature(dst)
	}
	return append(dst, "]}"...)
}

func (f *Fence) appendFeature(dst []byte) []byte {
	dst = append(dst, `{"type":"Feature","properties":{`...)
	dst = jsonw.String(append(dst, `"name":`...), f.Name)
	if f.SpeedLimit > 0 {
		dst = jsonw.Float(jsonw.Member(dst, "speed_limit"), f.SpeedLimit)
	}
	if ids := f.Vehicles(); ids != nil {
		dst = append(jsonw.Member(dst, "vehicles"), '[')
		for i, id := range ids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.String(dst, id)
		}
		dst = append(dst, ']')
	}
	if f.radius > 0 {
		dst = jsonw.Float(jsonw.Member(dst, "radius"), f.radius)
		dst = append(dst, `},"geometry":{"type":"Point","coordinates":`...)
		dst = appendPoint(dst, f.center)
		return append(dst, "}}"...)
	}
	if len(f.polygons) == 1 {
		dst = append(dst, `},"geometry":{"type":"Polygon","coordinates":`...)
		dst = appendPolygon(dst, f.polygons[0])
		return append(dst, "}}"...)
	}
	dst = append(dst, `},"geometry":{"type":"MultiPolygon","coordinates":[`...)
	for i, p := range f.polygons {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendPolygon(dst, p)
	}
	return append(dst, "]}}"...)
}

func appendPolygon(dst []byte, p orb.Polygon) []byte {
	dst = append(dst, '[')
	for i, r := range p {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		for j, pt := range r {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendPoint(dst, pt)
		}
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// appendPoint writes [longitude, latitude] with the digits they were read
// with ('g', -1: the shortest that reads back the same).
func appendPoint(dst []byte, p orb.Point) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendFloat(dst, p[0], 'g', -1, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, p[1], 'g', -1, 64)
	return append(dst, ']')
}
