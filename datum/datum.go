// Package datum converts coordinates between WGS-84 and the two offset
// datums used by Chinese map providers: GCJ-02 (the "Mars coordinates"
// mandated for published maps in China) and BD-09 (Baidu's further
// offset of GCJ-02).
//
// The forward transforms are the widely published reverse-engineered
// formulas: GCJ-02 is WGS-84 plus a polynomial/sine perturbation scaled on
// the Krasovsky 1940 ellipsoid, and BD-09 is a small rotation and scaling
// of GCJ-02 followed by a fixed shift. Neither has an exact closed-form
// inverse, so the inverses here solve the forward transform by fixed-point
// iteration until it reproduces its input to about 1e-9 degrees (0.1 mm),
// far below the accuracy of any GPS fix.
//
// The offsets are applied only inside the rough bounding box used by the
// published algorithms (see InChina); everywhere else, and for invalid
// input (NaN, ±Inf, |lat| > 90, |lng| > 180), every conversion returns its
// input unchanged. Latitude comes first in every signature, as it does in
// the platform's messages; all angles are decimal degrees.
package datum

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Datum names a geodetic datum used by the platform.
//
// The zero value is WGS84, so an unset Datum means "no conversion".
type Datum uint8

// The datums a tracking platform may report coordinates in.
const (
	WGS84 Datum = iota // GPS / international maps
	GCJ02              // Chinese national offset (AutoNavi/Amap, Tencent, Google .cn)
	BD09               // Baidu's offset of GCJ-02
)

// names holds the canonical spelling of each Datum, indexed by value.
var names = [...]string{WGS84: "wgs84", GCJ02: "gcj02", BD09: "bd09"}

// Parse returns the Datum named by s. It accepts "wgs84", "gcj02" and
// "bd09", with or without a hyphen before the digits ("gcj-02"), in any
// case and with surrounding white space ignored, because these names
// arrive from hand-written configuration.
func Parse(s string) (Datum, error) {
	t := strings.TrimSpace(s)
	for d, name := range names {
		// name[:n] + "-" + name[n:] without allocating: the digits are
		// always the last two characters.
		n := len(name) - 2
		if strings.EqualFold(t, name) ||
			(len(t) == len(name)+1 && t[n] == '-' &&
				strings.EqualFold(t[:n], name[:n]) && t[n+1:] == name[n:]) {
			return Datum(d), nil
		}
	}
	return 0, errors.New("datum: unknown datum " + strconv.Quote(s) +
		" (want wgs84, gcj02 or bd09)")
}

// String returns the canonical lower-case name accepted by Parse, or
// "Datum(n)" for a value that is not one of the constants.
func (d Datum) String() string {
	if int(d) < len(names) {
		return names[d]
	}
	return "Datum(" + strconv.Itoa(int(d)) + ")"
}

// MarshalText implements encoding.TextMarshaler so a Datum can be written
// to configuration files by name.
func (d Datum) MarshalText() ([]byte, error) {
	if int(d) >= len(names) {
		return nil, errors.New("datum: cannot marshal invalid " + d.String())
	}
	return []byte(names[d]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using Parse, so a
// Datum can be read directly from JSON, YAML or flag values.
func (d *Datum) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ToWGS84 converts a coordinate expressed in datum d to WGS-84.
// It is the identity for WGS84, and for any value that is not one of the
// constants, since such a value can only come from a bug elsewhere and
// passing the fix through beats inventing an offset.
func (d Datum) ToWGS84(lat, lng float64) (float64, float64) {
	if !InChina(lat, lng) {
		return lat, lng
	}
	switch d {
	case GCJ02:
		return gcjDecode(lat, lng)
	case BD09:
		// The box is checked once, on the caller's coordinate, so the
		// intermediate GCJ-02 point is converted even if the offset has
		// pushed it across the edge of the box; that keeps BD09 round
		// trips consistent with GCJ02 ones.
		return gcjDecode(bdDecode(lat, lng))
	}
	return lat, lng
}

// FromWGS84 converts a WGS-84 coordinate to datum d. It is the identity
// for WGS84 and for values that are not one of the constants.
func (d Datum) FromWGS84(lat, lng float64) (float64, float64) {
	if !InChina(lat, lng) {
		return lat, lng
	}
	switch d {
	case GCJ02:
		return gcjEncode(lat, lng)
	case BD09:
		return bdEncode(gcjEncode(lat, lng))
	}
	return lat, lng
}

// Bounds of the rectangle the published algorithms treat as "China".
// It is rough: besides all of mainland China it covers Mongolia, Korea,
// western Japan, the Philippines and much of South-East Asia, none of
// which uses GCJ-02. We keep it because it is what the
// published implementations, and hence most software on the other side
// of the platform, use; a precise border would make our results disagree
// with theirs instead.
const (
	minLat = 0.8293
	maxLat = 55.8271
	minLng = 72.004
	maxLng = 137.8347
)

// InChina reports whether (lat, lng) lies inside the bounding box in
// which GCJ-02 and BD-09 differ from WGS-84: latitude 0.8293..55.8271 and
// longitude 72.004..137.8347, edges included. It is false for NaN and
// infinite input.
func InChina(lat, lng float64) bool {
	// Written so that every comparison with NaN fails the test, which is
	// what makes invalid input fall through as the identity everywhere.
	return lat >= minLat && lat <= maxLat && lng >= minLng && lng <= maxLng
}

// WGS84ToGCJ02 converts a WGS-84 coordinate to GCJ-02.
func WGS84ToGCJ02(lat, lng float64) (float64, float64) {
	if !InChina(lat, lng) {
		return lat, lng
	}
	return gcjEncode(lat, lng)
}

// GCJ02ToWGS84 converts a GCJ-02 coordinate to WGS-84 by iterating the
// forward transform; the result maps back to the input to within about
// 1e-9 degrees.
//
// Because the box is tested on the GCJ-02 input, points within about
// 0.01° of its edge may not round-trip exactly; nothing of interest lies
// there.
func GCJ02ToWGS84(lat, lng float64) (float64, float64) {
	if !InChina(lat, lng) {
		return lat, lng
	}
	return gcjDecode(lat, lng)
}

// GCJ02ToBD09 converts a GCJ-02 coordinate to BD-09.
//
// Some published implementations (gcoord, for one) apply this step
// worldwide; here it is the identity outside InChina, like every other
// conversion in the package, so that no datum ever moves a point abroad.
func GCJ02ToBD09(lat, lng float64) (float64, float64) {
	if !InChina(lat, lng) {
		return lat, lng
	}
	return bdEncode(lat, lng)
}

// BD09ToGCJ02 converts a BD-09 coordinate to GCJ-02, the exact inverse
// (to about 1e-9 degrees) of GCJ02ToBD09. The widely copied closed form is
// only the starting guess: on its own it is off by up to 2e-6° (≈0.2 m).
func BD09ToGCJ02(lat, lng float64) (float64, float64) {
	if !InChina(lat, lng) {
		return lat, lng
	}
	return bdDecode(lat, lng)
}

const (
	// tolerance is how closely the forward transform of an inverse's
	// result must reproduce the inverse's input, in degrees (≈0.1 mm).
	tolerance = 1e-9

	// maxIter bounds the inverse iterations. Each step shrinks the error
	// by the slope of the offset, measured at under 0.01 for GCJ-02 and
	// 0.022 for BD-09 across the box; over 2 million random points
	// GCJ-02 needed at most 3 corrections and BD-09 at most 2. The bound
	// only guards against rounding keeping the residual just above the
	// tolerance.
	maxIter = 10
)

// Krasovsky 1940 ellipsoid, on which GCJ-02 scales its offsets.
const (
	krasovskyA  = 6378245.0              // semi-major axis, metres
	krasovskyEE = 0.00669342162296594323 // first eccentricity squared
)

// gcjEncode applies the GCJ-02 offset without the box test, so that the
// inverse can evaluate it at estimates that stray over the edge.
func gcjEncode(lat, lng float64) (float64, float64) {
	dLat, dLng := gcjOffset(lat, lng)
	return lat + dLat, lng + dLng
}

// gcjDecode inverts gcjEncode by fixed-point iteration. The offset changes
// by less than a hundredth of a degree per degree, so subtracting the
// residual is a strong contraction and no Jacobian (Newton step) is needed.
func gcjDecode(lat, lng float64) (float64, float64) {
	dLat, dLng := gcjOffset(lat, lng)
	wLat, wLng := lat-dLat, lng-dLng // the classic one-step estimate, ~1 m off
	for range maxIter {
		gLat, gLng := gcjEncode(wLat, wLng)
		rLat, rLng := gLat-lat, gLng-lng
		if math.Abs(rLat) < tolerance && math.Abs(rLng) < tolerance {
			break
		}
		wLat, wLng = wLat-rLat, wLng-rLng
	}
	return wLat, wLng
}

// gcjOffset returns the GCJ-02 offset at a WGS-84 point, in degrees. The
// polynomials yield metres-like quantities that are turned into degrees
// using the Krasovsky radii of curvature at the point's latitude.
func gcjOffset(lat, lng float64) (dLat, dLng float64) {
	x, y := lng-105.0, lat-35.0
	dLat = transformLat(x, y)
	dLng = transformLng(x, y)

	radLat := lat * math.Pi / 180
	s := math.Sin(radLat)
	w := 1 - krasovskyEE*s*s
	sqrtW := math.Sqrt(w)
	meridianRadius := krasovskyA * (1 - krasovskyEE) / (w * sqrtW)
	parallelRadius := krasovskyA / sqrtW * math.Cos(radLat)
	dLat = dLat * 180 / (meridianRadius * math.Pi)
	dLng = dLng * 180 / (parallelRadius * math.Pi)
	return dLat, dLng
}

// transformLat and transformLng are the published GCJ-02 perturbation
// polynomials, in the form and term order of the widely copied
// implementations so they can be compared line by line; x and y are
// longitude and latitude relative to (105°E, 35°N).
func transformLat(x, y float64) float64 {
	ret := -100.0 + 2.0*x + 3.0*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x))
	ret += (20.0*math.Sin(6.0*x*math.Pi) + 20.0*math.Sin(2.0*x*math.Pi)) * 2.0 / 3.0
	ret += (20.0*math.Sin(y*math.Pi) + 40.0*math.Sin(y/3.0*math.Pi)) * 2.0 / 3.0
	ret += (160.0*math.Sin(y/12.0*math.Pi) + 320*math.Sin(y*math.Pi/30.0)) * 2.0 / 3.0
	return ret
}

func transformLng(x, y float64) float64 {
	ret := 300.0 + x + 2.0*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x))
	ret += (20.0*math.Sin(6.0*x*math.Pi) + 20.0*math.Sin(2.0*x*math.Pi)) * 2.0 / 3.0
	ret += (20.0*math.Sin(x*math.Pi) + 40.0*math.Sin(x/3.0*math.Pi)) * 2.0 / 3.0
	ret += (150.0*math.Sin(x/12.0*math.Pi) + 300.0*math.Sin(x/30.0*math.Pi)) * 2.0 / 3.0
	return ret
}

// xPi is Baidu's angular frequency for the BD-09 perturbation terms.
const xPi = math.Pi * 3000.0 / 180.0

// bdEncode is the published GCJ-02 → BD-09 transform without the box
// test: a tiny position-dependent scaling and rotation about (0°, 0°)
// followed by a constant shift.
func bdEncode(lat, lng float64) (float64, float64) {
	z := math.Sqrt(lng*lng+lat*lat) + 0.00002*math.Sin(lat*xPi)
	theta := math.Atan2(lat, lng) + 0.000003*math.Cos(lng*xPi)
	return z*math.Sin(theta) + 0.006, z*math.Cos(theta) + 0.0065
}

// bdDecode inverts bdEncode. The published closed form evaluates the
// perturbation terms at the BD-09 point rather than at the unknown GCJ-02
// one, which leaves an error of up to 2e-6°; it is used as the starting
// guess and then refined like gcjDecode.
func bdDecode(lat, lng float64) (float64, float64) {
	x, y := lng-0.0065, lat-0.006
	z := math.Sqrt(x*x+y*y) - 0.00002*math.Sin(y*xPi)
	theta := math.Atan2(y, x) - 0.000003*math.Cos(x*xPi)
	gLat, gLng := z*math.Sin(theta), z*math.Cos(theta)
	for range maxIter {
		bLat, bLng := bdEncode(gLat, gLng)
		rLat, rLng := bLat-lat, bLng-lng
		if math.Abs(rLat) < tolerance && math.Abs(rLng) < tolerance {
			break
		}
		gLat, gLng = gLat-rLat, gLng-rLng
	}
	return gLat, gLng
}
