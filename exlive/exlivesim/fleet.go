package exlivesim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// districts give the simulated positions a plausible posinfo.
var districts = []string{
	"上海市黄浦区人民大道", "上海市静安区南京西路", "上海市徐汇区漕溪北路", "上海市浦东新区世纪大道",
	"上海市长宁区延安西路", "上海市普陀区中山北路", "上海市虹口区四川北路", "上海市杨浦区黄兴路",
}

// vehicle is one simulated vehicle driving round a closed route.
type vehicle struct {
	id, code, sim, group string
	route                [][2]float64 // lat, lng corners
	leg                  int          // index of the corner it drives from
	frac                 float64      // how far along the leg
	speed                float64      // km/h
	fuel, mileage        float64
	alarm                bool
	last                 time.Time // when it was last stepped
}

// fleet is the simulated vehicles of one server.
type fleet struct {
	vehicles []*vehicle
	groups   []exlive.Group
}

func newFleet(cfg Config) *fleet {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	f := &fleet{}
	groups := max(cfg.Groups, 1)
	for g := range groups {
		f.groups = append(f.groups, exlive.Group{
			ID:       strconv.Itoa(g + 1),
			Name:     fmt.Sprintf("车队%d", g+1),
			Customer: "模拟客户",
			Relation: "0",
		})
	}
	for i := range cfg.Vehicles {
		v := &vehicle{
			id:      cfg.IDPrefix + strconv.Itoa(i+1),
			code:    fmt.Sprintf("沪A%05d", 10000+i),
			sim:     fmt.Sprintf("1380000%04d", i),
			group:   f.groups[i%groups].ID,
			speed:   20 + rng.Float64()*60,
			fuel:    20 + rng.Float64()*40,
			mileage: 1000 + rng.Float64()*100000,
		}
		// A loop of four to seven corners around a point within ~15 km of
		// the centre: enough to look like a delivery round on a map.
		cLat := cfg.Lat + (rng.Float64()-0.5)*0.25
		cLng := cfg.Lng + (rng.Float64()-0.5)*0.3
		n := 4 + rng.IntN(4)
		for k := range n {
			a := 2 * math.Pi * float64(k) / float64(n)
			r := 0.01 + rng.Float64()*0.03
			v.route = append(v.route, [2]float64{cLat + r*math.Sin(a), cLng + r*math.Cos(a)*1.2})
		}
		v.frac = rng.Float64()
		f.vehicles = append(f.vehicles, v)
	}
	return f
}

// step moves v on to now and fills p with where it is.
func (v *vehicle) step(now time.Time, loc *time.Location, p *exlive.Position, rng *rand.Rand) {
	var dt time.Duration
	if !v.last.IsZero() {
		dt = now.Sub(v.last)
	}
	v.last = now
	km := v.speed * dt.Hours()
	for km > 0 {
		a, b := v.route[v.leg], v.route[(v.leg+1)%len(v.route)]
		legKm := distanceKm(a, b)
		left := legKm * (1 - v.frac)
		if km < left {
			v.frac += km / legKm
			km = 0
		} else {
			km -= left
			v.leg = (v.leg + 1) % len(v.route)
			v.frac = 0
		}
	}
	a, b := v.route[v.leg], v.route[(v.leg+1)%len(v.route)]
	lat := a[0] + (b[0]-a[0])*v.frac
	lng := a[1] + (b[1]-a[1])*v.frac
	v.mileage += v.speed * dt.Hours()
	v.fuel = math.Max(5, v.fuel-v.speed*dt.Hours()*0.08)
	if rng.IntN(500) == 0 {
		v.alarm = !v.alarm
	}
	v.speed = math.Min(90, math.Max(0, v.speed+(rng.Float64()-0.5)*4))

	*p = exlive.Position{
		ID:        v.id,
		Code:      v.code,
		Lat:       round(lat, 6),
		Lng:       round(lng, 6),
		Speed:     opt.Some(round(v.speed, 1)),
		Direction: opt.Some(math.Mod(math.Round(bearing(a, b)), 360)),
		Time:      opt.Some(now.In(loc).Truncate(time.Second)),
		Valid:     opt.Some(true),
		Alarm:     opt.Some(v.alarm),
		Fuel:      opt.Some(round(v.fuel, 1)),
		Mileage:   opt.Some(round(v.mileage, 1)),
		CState:    "ACC开",
		PosInfo:   districts[int(math.Abs(lat*1000+lng*1000))%len(districts)],
	}
}

func round(f float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(f*p) / p
}

func distanceKm(a, b [2]float64) float64 {
	const r = 6371.0
	lat1, lat2 := a[0]*math.Pi/180, b[0]*math.Pi/180
	dLat, dLng := lat2-lat1, (b[1]-a[1])*math.Pi/180
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

func bearing(a, b [2]float64) float64 {
	lat1, lat2 := a[0]*math.Pi/180, b[0]*math.Pi/180
	dLng := (b[1] - a[1]) * math.Pi / 180
	y := math.Sin(dLng) * math.Cos(lat2)
	x := math.Cos(lat1)*math.Sin(lat2) - math.Sin(lat1)*math.Cos(lat2)*math.Cos(dLng)
	return math.Mod(math.Atan2(y, x)*180/math.Pi+360, 360)
}
