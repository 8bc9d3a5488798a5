package bridge

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/hass"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/owntracks"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
)

// announcer announces the vehicles to other programs: Home Assistant
// discovery configs (HASS_DISCOVERY), sent once per code a vehicle has,
// again when Home Assistant or the broker lost them, and removed when the
// vehicle leaves the inventory; and OwnTracks cards (OWNTRACKS_ENABLE),
// which give a vehicle's OwnTracks device its plate as a name.
type announcer struct {
	log     zerolog.Logger
	pub     publisher
	topics  topic.Layout
	reg     *registry
	hass    bool // HASS_DISCOVERY
	version string
	// delay returns how long to wait before a refresh; nil: a random time
	// of up to five seconds.
	delay     func() time.Duration
	ownTracks bool // OWNTRACKS_ENABLE
	// availability, geofences: the bridge publishes each vehicle's
	// availability (VEHICLE_OFFLINE_AFTER), and its geofences
	// (GEOFENCES_FILE), which Home Assistant gets an entity for.
	availability, geofences bool

	// hassMu orders the sending and removal of discovery configs.
	hassMu  sync.Mutex
	refresh chan struct{}

	// The sweep of configs an earlier version left under the legacy node
	// (hass.Stale): until it ends, vehicle configs are held back in
	// pending, so that Home Assistant removes an old entity before it
	// creates its successor, which then takes the old entity id rather
	// than one ending in _2.
	sweeping   bool // guarded by hassMu
	pending    map[*vehicle]struct{}
	sweepQuiet time.Duration // the sweep ends when no old config has come for this long
	lastOld    atomic.Int64  // Unix ns of the link coming up or of the latest old config
	cleared    atomic.Int64  // old configs cleared
}

// changed is told of a vehicle that is new (created), or whose code
// changed: it is announced.
func (a *announcer) changed(v *vehicle, created bool, code string) {
	if a.hass {
		a.sendConfigs(v, false)
	}
	if created && a.ownTracks && code != "" {
		a.pub.publish(a.topics.OwnTracksCard(a.reg.level(v)), owntracks.EncodeCard(nil, code, ""), true)
	}
}

// listed is told of every vehicle the inventory lists: one that came back
// after it left is announced again.
func (a *announcer) listed(v *vehicle) {
	if a.hass {
		a.sendConfigs(v, false)
	}
}

// gone is told of a vehicle that left the inventory.
func (a *announcer) gone(v *vehicle) {
	if a.hass {
		a.unannounce(v)
	}
}

func (a *announcer) hassConfig() hass.Config {
	return hass.Config{Topics: a.topics, Version: a.version, Availability: a.availability, Geofences: a.geofences}
}

// sendConfigs publishes the discovery configs of v when they have not been
// sent for its current code or, with again, when they have (Home Assistant
// lost them). Configs removed because v left the inventory are not sent
// again by a refresh. hassMu keeps a refresh from resurrecting configs that
// are being removed.
func (a *announcer) sendConfigs(v *vehicle, again bool) {
	a.hassMu.Lock()
	defer a.hassMu.Unlock()
	v.mu.Lock()
	if v.announce != again {
		v.mu.Unlock()
		return
	}
	if a.sweeping {
		v.mu.Unlock()
		if !again {
			a.pending[v] = struct{}{}
		}
		return
	}
	v.announce = true
	hv := hass.Vehicle{ID: v.id, Code: v.code, Level: a.reg.level(v)}
	v.mu.Unlock()
	for _, m := range hass.Configs(a.hassConfig(), hv) {
		a.pub.publish(m.Topic, m.Payload, m.Retain)
	}
}

// unannounce deletes the discovery configs of a vehicle that left the
// inventory.
func (a *announcer) unannounce(v *vehicle) {
	a.hassMu.Lock()
	defer a.hassMu.Unlock()
	delete(a.pending, v)
	v.mu.Lock()
	v.announce = false
	hv := hass.Vehicle{ID: v.id, Code: v.code, Level: a.reg.level(v)}
	v.mu.Unlock()
	for _, m := range hass.Remove(a.hassConfig(), hv) {
		a.pub.publish(m.Topic, m.Payload, m.Retain)
	}
	a.log.Info().Str("vehicle", v.id).Msg("vehicle left the inventory: Home Assistant configs removed")
}

// onOldConfig hears a retained config under the legacy node: one this
// bridge published there before bridges were told apart is cleared.
func (a *announcer) onOldConfig(in mqtt.Incoming) {
	a.lastOld.Store(time.Now().UnixNano())
	if !in.Retained || !hass.Stale(a.hassConfig(), in.Payload) {
		return
	}
	if a.cleared.Add(1) == 1 {
		a.log.Info().Str("topic", in.Topic).Msg("clearing the Home Assistant configs an earlier version left under the old node")
	}
	a.pub.publish(in.Topic, []byte{}, true)
}

// linkUp is told that the broker link is up and the subscriptions made.
func (a *announcer) linkUp() {
	a.lastOld.Store(time.Now().UnixNano())
	a.requestRefresh()
}

// endSweep waits until no old config has come for sweepQuiet (the broker
// sends the retained ones right after the subscription), then sends the
// configs held back meanwhile. MQTT marks no end of the retained messages;
// a quiet spell is the evidence there is.
func (a *announcer) endSweep(ctx context.Context) bool {
	for {
		wait := a.sweepQuiet - time.Since(time.Unix(0, a.lastOld.Load()))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	a.hassMu.Lock()
	a.sweeping = false
	held := a.pending
	a.pending = nil
	a.hassMu.Unlock()
	a.log.Info().Int64("cleared", a.cleared.Load()).Int("vehicles", len(held)).Msg("Home Assistant configs of earlier versions swept; sending the configs")
	for v := range held {
		a.sendConfigs(v, false)
	}
	return true
}

// onHassStatus hears Home Assistant come online: it has lost configs it
// did not have retained, so they are sent again.
func (a *announcer) onHassStatus(in mqtt.Incoming) {
	if string(in.Payload) == "online" && !in.Retained {
		a.requestRefresh()
	}
}

func (a *announcer) requestRefresh() {
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// loop re-sends every config when asked, after a random delay of up to
// five seconds, so that many bridges do not answer Home Assistant's restart
// in the same instant (Home Assistant's own advice).
func (a *announcer) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.refresh:
		}
		delay := time.Duration(rand.Int64N(int64(5 * time.Second)))
		if a.delay != nil {
			delay = a.delay()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		a.hassMu.Lock()
		sweeping := a.sweeping
		a.hassMu.Unlock()
		if sweeping && !a.endSweep(ctx) {
			return
		}
		for _, m := range hass.Bridge(a.hassConfig()) {
			a.pub.publish(m.Topic, m.Payload, m.Retain)
		}
		for _, v := range a.reg.all() {
			a.sendConfigs(v, true)
		}
	}
}
