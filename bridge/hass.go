package bridge

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/hass"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
)

func (b *Bridge) hassConfig() hass.Config {
	return hass.Config{Topics: b.topics, Version: b.opts.Version}
}

// announce publishes the discovery configs of v, once per code it has.
func (b *Bridge) announce(v *vehicle) { b.sendConfigs(v, false) }

// sendConfigs publishes the discovery configs of v when they have not been
// sent for its current code or, with again, when they have (Home Assistant
// lost them). Configs removed because v left the inventory are not sent
// again by a refresh. hassMu keeps a refresh from resurrecting configs that
// are being removed.
func (b *Bridge) sendConfigs(v *vehicle, again bool) {
	b.hassMu.Lock()
	defer b.hassMu.Unlock()
	v.mu.Lock()
	if v.announce != again {
		v.mu.Unlock()
		return
	}
	v.announce = true
	hv := hass.Vehicle{ID: v.id, Code: v.code, Level: b.reg.level(v)}
	v.mu.Unlock()
	for _, m := range hass.Configs(b.hassConfig(), hv) {
		b.publish(m.Topic, m.Payload, m.Retain)
	}
}

// unannounce deletes the discovery configs of a vehicle that left the
// inventory.
func (b *Bridge) unannounce(v *vehicle) {
	b.hassMu.Lock()
	defer b.hassMu.Unlock()
	v.mu.Lock()
	v.announce = false
	hv := hass.Vehicle{ID: v.id, Code: v.code, Level: b.reg.level(v)}
	v.mu.Unlock()
	for _, m := range hass.Remove(b.hassConfig(), hv) {
		b.publish(m.Topic, m.Payload, m.Retain)
	}
	b.log.Info().Str("vehicle", v.id).Msg("vehicle left the inventory: Home Assistant configs removed")
}

// onHassStatus hears Home Assistant come online: it has lost configs it
// did not have retained, so they are sent again.
func (b *Bridge) onHassStatus(in mqtt.Incoming) {
	if string(in.Payload) == "online" && !in.Retained {
		b.requestHassRefresh()
	}
}

func (b *Bridge) requestHassRefresh() {
	select {
	case b.hassRefresh <- struct{}{}:
	default:
	}
}

// hassLoop re-sends every config when asked, after a random delay of up to
// five seconds, so that many bridges do not answer Home Assistant's restart
// in the same instant (Home Assistant's own advice).
func (b *Bridge) hassLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.hassRefresh:
		}
		delay := time.Duration(rand.Int64N(int64(5 * time.Second)))
		if b.opts.HassDelay != nil {
			delay = b.opts.HassDelay()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for _, m := range hass.Bridge(b.hassConfig()) {
			b.publish(m.Topic, m.Payload, m.Retain)
		}
		for _, v := range b.reg.all() {
			b.sendConfigs(v, true)
		}
	}
}
