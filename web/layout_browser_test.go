package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/web"
	"github.com/exlive2mqtt/exlive2mqtt/web/browsertest"
)

// box is an element's place on the page, in CSS pixels from the top left
// of the document.
type box struct{ X, Y, W, H float64 }

func (b box) right() float64  { return b.X + b.W }
func (b box) bottom() float64 { return b.Y + b.H }

// layout is what the layout tests read of the page.
type layout struct {
	InnerWidth  float64 `json:"innerWidth"`
	ScrollWidth float64 `json:"scrollWidth"`
	// Overflow of html and body: "hidden" there would hide sideways
	// scrolling from ScrollWidth rather than end it.
	HTMLOverflow, BodyOverflow string

	Map, Counters, Session, Broker, Vehicles box

	HeadShown bool     // the table's header row
	Rows      [][]box  // the cells of the first rows
	RowFont   float64  // the smallest font of a cell, px
	Clipped   []string // cells whose text is cut off
	Scrollers []string // elements that scroll sideways
	Buttons   []box    // the paging buttons
}

const layoutJS = `(() => {
  const box = (e) => { const b = e.getBoundingClientRect(); return {X: b.left + scrollX, Y: b.top + scrollY, W: b.width, H: b.height}; };
  const q = (sel) => box(document.querySelector(sel));
  const cells = [...document.querySelectorAll('#vehicle-rows td')].filter((td) => td.getClientRects().length > 0);
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().replace(/\s+/g, '.') : '');
  const watched = [...document.querySelectorAll('header, header *, main, main > *, aside, aside *, .content, #vehicles, #vehicles *')];
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    HTMLOverflow: getComputedStyle(document.documentElement).overflowX,
    BodyOverflow: getComputedStyle(document.body).overflowX,
    Map: q('#map'), Counters: q('#counters'), Session: q('#session'), Broker: q('#broker'),
    Vehicles: q('#vehicles'),
    HeadShown: document.querySelector('#vehicles thead').getClientRects().length > 0 &&
      document.querySelector('#vehicles thead th').getBoundingClientRect().height > 1,
    Rows: [...document.querySelectorAll('#vehicle-rows tr')].slice(0, 5).map((tr) => [...tr.cells].filter((td) => td.getClientRects().length > 0).map(box)),
    RowFont: Math.min(...cells.map((td) => parseFloat(getComputedStyle(td).fontSize))),
    Clipped: cells.filter((td) => td.scrollWidth > td.clientWidth + 1).map((td) => name(td) + ' ' + td.textContent),
    Scrollers: watched.filter((e) => e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)).map(name),
    Buttons: [...document.querySelectorAll('#paging button')].map(box),
  };
})()`

// phoneFleet is 60 vehicles round Hangzhou (more than a page of the
// table), the demo's five first, with their long and hostile codes unless
// plain is set (for the pictures).
func phoneFleet(now time.Time, plain bool) *fakeSource {
	src := demoSourceAt(now)
	vs := src.vehicles
	if plain {
		for i, code := range []string{"浙A·12345", "沪B-66778 冷链", "浙A·D8812 危险品", "皖K-30571", "Truck 7"} {
			vs[i].Code = code
		}
	}
	for i := len(vs); i < 60; i++ {
		vs = append(vs, web.Vehicle{
			ID: "H" + strconv.Itoa(i), Code: fmt.Sprintf("浙A·%05d", 20000+i*37), Topic: "exlive/vehicles/H" + strconv.Itoa(i) + "/position",
			Lat: ptr(30.15 + float64(i%7)*0.035), Lng: ptr(120.02 + float64(i%9)*0.03), Speed: ptr(float64(i * 7 % 90)), Direction: ptr(float64(i * 47 % 360)),
			Time: ptr(now.Add(-time.Duration(i) * 7 * time.Second)), Valid: ptr(i%11 != 3), Alarm: ptr(i%23 == 5),
		})
	}
	src.setVehicles(vs)
	return src
}

// openAt loads the page at url in a window of width×height (a phone's
// when mobile) and waits until it shows the first page of the table and
// the map its markers.
func openAt(t *testing.T, url string, width, height int, mobile bool) *browsertest.Session {
	t.Helper()
	b := browsertest.Open(t)
	b.SetViewport(width, height, mobile)
	b.Navigate(url)
	b.WaitFor(`document.body.dataset.live === 'true' && document.querySelectorAll('#vehicle-rows tr').length === 50 && document.querySelector('.leaflet-marker-icon, .marker-cluster')`, time.Minute)
	return b
}

// readLayout reads the layout once the page has drawn a frame.
func readLayout(b *browsertest.Session) layout {
	b.Eval(`new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))`, nil)
	var l layout
	b.Eval(layoutJS, &l)
	return l
}

// noSideways checks that a page laid out in a window width wide fits it:
// nothing wider than the window, nothing that scrolls sideways inside the
// page, no cell cut off.
func noSideways(t *testing.T, l layout, width int) {
	t.Helper()
	if l.InnerWidth != float64(width) {
		t.Errorf("width %d: the page's viewport is %g wide: a phone zooms out to fit a page wider than the screen", width, l.InnerWidth)
	}
	if l.ScrollWidth > l.InnerWidth {
		t.Errorf("width %d: the page is %g wide and scrolls sideways", width, l.ScrollWidth)
	}
	if l.HTMLOverflow != "visible" || l.BodyOverflow != "visible" {
		t.Errorf("width %d: overflow-x %s on html, %s on body would hide what is too wide", width, l.HTMLOverflow, l.BodyOverflow)
	}
	if len(l.Scrollers) > 0 {
		t.Errorf("width %d: these scroll sideways: %v", width, l.Scrollers)
	}
	if len(l.Clipped) > 0 {
		t.Errorf("width %d: these cells are cut off: %v", width, l.Clipped)
	}
}

// near reports whether a and b are within half a pixel.
func near(a, b float64) bool { return a-b < 0.5 && b-a < 0.5 }

// TestStatusPageLayout: on a phone (390×844) the map comes first, nothing
// scrolls sideways, the table is readable as one card per vehicle and its
// paging buttons are big enough to tap; on a wide screen (1400×900) the
// page is laid out as before: the links and the counters in a column on
// the left, the map and the table right of it. UPDATE_SCREENSHOT=1 writes
// the pictures of docs/operations.md.
func TestStatusPageLayout(t *testing.T) {
	browsertest.Chromium(t)
	url := servePage(t, phoneFleet(time.Now(), false), "")

	t.Run("phone", func(t *testing.T) {
		b := openAt(t, url, 390, 844, true)
		l := readLayout(b)
		noSideways(t, l, 390)
		for name, other := range map[string]box{"the platform link": l.Session, "the broker link": l.Broker, "the vehicles": l.Vehicles, "the counters": l.Counters} {
			if l.Map.Y >= other.Y {
				t.Errorf("the map's top (%g) is not above %s' (%g)", l.Map.Y, name, other.Y)
			}
		}
		// Then the two links side by side, on the first screen; then
		// the vehicles, then the counters.
		if !near(l.Session.Y, l.Broker.Y) || l.Session.Y < l.Map.bottom() || l.Broker.X < l.Session.right() || l.Session.bottom() > 844 {
			t.Errorf("links at %+v and %+v: want them side by side under the map (bottom %g), within the first 844 px", l.Session, l.Broker, l.Map.bottom())
		}
		if l.Vehicles.Y < l.Session.bottom() || l.Counters.Y < l.Vehicles.bottom() {
			t.Errorf("vehicles at %g, counters at %g: want the vehicles under the links (bottom %g), the counters last", l.Vehicles.Y, l.Counters.Y, l.Session.bottom())
		}
		// One card per vehicle: no header row, every cell on the
		// screen, three lines of text at least 13 px (the alarm's cell
		// only when there is one).
		if l.HeadShown {
			t.Error("the table's header row shows above the cards")
		}
		if l.RowFont < 13 {
			t.Errorf("the smallest text in the table is %g px", l.RowFont)
		}
		for i, cells := range l.Rows {
			lines := map[float64]bool{}
			for _, c := range cells {
				if c.X < l.Vehicles.X || c.right() > l.Vehicles.right() {
					t.Errorf("row %d: a cell at %+v lies outside the vehicles' box %+v", i, c, l.Vehicles)
				}
				lines[c.Y] = true
			}
			if len(cells) < 7 || len(lines) != 3 {
				t.Errorf("row %d: %d cells on %d lines, want 7 or 8 on 3: %+v", i, len(cells), len(lines), cells)
			}
		}
		// Paging buttons big enough to tap, side by side on the screen.
		if len(l.Buttons) != 4 {
			t.Fatalf("%d paging buttons", len(l.Buttons))
		}
		for i, btn := range l.Buttons {
			if btn.H < 44 || btn.W < 44 || btn.X < 0 || btn.right() > 390 || !near(btn.bottom(), l.Buttons[0].bottom()) {
				t.Errorf("paging button %d at %+v: want at least 44×44, on the screen, in one row", i, btn)
			}
		}
		b.Eval(`document.getElementById('page-next').click()`, nil)
		b.WaitFor(`document.getElementById('vehicle-page').textContent === '51–60 of 60'`, time.Minute)
		for _, p := range b.ConsoleProblems() {
			t.Errorf("page console: %s", p)
		}
	})

	t.Run("wide", func(t *testing.T) {
		b := openAt(t, url, 1400, 900, false)
		l := readLayout(b)
		noSideways(t, l, 1400)
		// As before: a 320 px column of the links and the counters, one
		// under the other; right of it, 16 px away, the map (420 px tall,
		// its top level with the links') and the table under it.
		for name, box := range map[string]box{"platform link": l.Session, "broker link": l.Broker, "counters": l.Counters} {
			if !near(box.X, 20) || !near(box.W, 320) {
				t.Errorf("%s at %+v: want a 320 px column 20 px from the left", name, box)
			}
		}
		if l.Broker.Y <= l.Session.bottom() || l.Counters.Y <= l.Broker.bottom() {
			t.Errorf("links and counters at %+v %+v %+v: want them one under the other", l.Session, l.Broker, l.Counters)
		}
		if !near(l.Map.X, l.Session.right()+17) || !near(l.Map.Y, l.Session.Y+1) || !near(l.Map.H, 420) {
			t.Errorf("the map at %+v: want it 16 px right of the links (%+v), level with them, 420 px tall", l.Map, l.Session)
		}
		if !near(l.Vehicles.X, l.Map.X-1) || l.Vehicles.Y < l.Map.bottom() {
			t.Errorf("the vehicles at %+v: want them under the map %+v", l.Vehicles, l.Map)
		}
		if !l.HeadShown {
			t.Error("the table has no header row")
		}
		for i, cells := range l.Rows {
			for _, c := range cells {
				if len(cells) != 8 || c.Y != cells[0].Y {
					t.Fatalf("row %d: %d cells, not one row of 8: %+v", i, len(cells), cells)
				}
			}
		}
		for i, btn := range l.Buttons {
			if btn.H >= 44 {
				t.Errorf("paging button %d is %g px tall: the phone's buttons on a wide screen", i, btn.H)
			}
		}
	})

	// Every width from a small phone up: nothing scrolls sideways.
	t.Run("every width", func(t *testing.T) {
		b := openAt(t, url, 320, 640, true)
		for _, w := range []int{320, 360, 390, 414, 600, 700, 768, 800, 850, 900, 901, 1024, 1100, 1150, 1280} {
			b.SetViewport(w, 800, w <= 900)
			noSideways(t, readLayout(b), w)
		}
	})

	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		plain := servePage(t, phoneFleet(time.Now(), true), "")
		for _, shot := range []struct {
			name          string
			width, height int
			mobile        bool
			scrollTo      string
		}{
			{"status-phone.png", 390, 844, true, ""},
			{"status-phone-vehicles.png", 390, 844, true, "vehicles"},
			{"status-wide.png", 1400, 900, false, ""},
		} {
			path, err := filepath.Abs(filepath.Join("..", "docs", shot.name))
			if err != nil {
				t.Fatal(err)
			}
			b := openAt(t, plain, shot.width, shot.height, shot.mobile)
			if shot.scrollTo != "" {
				b.Eval(`window.scrollTo(0, document.getElementById('`+shot.scrollTo+`').offsetTop - 12)`, nil)
			}
			readLayout(b) // a frame drawn
			b.Screenshot(path)
			t.Logf("wrote %s", path)
		}
	}
}
