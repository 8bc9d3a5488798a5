package exlive

import (
	"context"
	"time"
)

// Limits on one inventory, so a platform that never stops listing cannot
// grow it without bound.
const (
	MaxGroups   = 10_000
	MaxVehicles = 500_000
)

// Inventory is the account's groups and their vehicles, as collected after
// a login and every Config.InventoryInterval. A vehicle in several groups is
// listed once per group.
type Inventory struct {
	Groups []Group
	// Vehicles are the vehicles listed, unless the Handler is a
	// VehicleLister: it has had them one at a time, and Vehicles is nil.
	Vehicles []Vehicle
	// Listed is how many vehicles were listed, in Vehicles or to a
	// VehicleLister.
	Listed int
	// Started and Collected are when the collection began and ended.
	Started, Collected time.Time
	// Truncated is set when the platform listed more than MaxGroups or
	// MaxVehicles; the rest were left out.
	Truncated bool
}

// VehicleLister is a Handler that takes an inventory's vehicles one at a
// time, as their frames are read, instead of in Inventory.Vehicles: a big
// account's list (100 000 vehicles are 10 MB as []Vehicle) is then never
// held whole, by this package or by the handler, which can turn each
// vehicle into what it keeps at once. Its methods are called on the
// goroutine that calls HandleInventory.
type VehicleLister interface {
	Handler
	// ListingStarted is called as a collection begins: the vehicles listed
	// until the next HandleInventory belong to it. A collection that fails
	// (the connection is lost) ends without a HandleInventory, and the
	// next one starts with ListingStarted again.
	ListingStarted()
	// ListVehicle gets each vehicle listed, GroupID set, in the order the
	// platform sent them. At most MaxVehicles are listed.
	ListVehicle(v Vehicle)
}

// inventoryLoop collects the inventory after login and then every
// InventoryInterval. Vehicles are asked for one group at a time, because
// 1011 does not say which group it belongs to; how the client tells that a
// list is complete is gather's.
func (c *Client) inventoryLoop(ctx context.Context) error {
	for {
		inv, err := c.collect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.log.Info().Int("groups", len(inv.Groups)).Int("vehicles", inv.Listed).
			Bool("truncated", inv.Truncated).Dur("took", inv.Collected.Sub(inv.Started)).Msg("inventory collected")
		c.h.HandleInventory(inv)
		if c.cfg.InventoryInterval <= 0 {
			<-ctx.Done()
			return nil
		}
		t := time.NewTimer(c.cfg.InventoryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (c *Client) collect(ctx context.Context) (Inventory, error) {
	c.collecting.Store(true)
	defer c.collecting.Store(false)
	inv := Inventory{Started: time.Now()}
	lister, _ := c.h.(VehicleLister)
	if lister != nil {
		lister.ListingStarted()
	}
	err := c.gather(ctx, &GroupsRequest{Client: true}, func(m Message) {
		if g, ok := m.(*Group); ok {
			if len(inv.Groups) < MaxGroups {
				inv.Groups = append(inv.Groups, *g)
			} else {
				inv.Truncated = true
			}
		}
	})
	if err != nil {
		return inv, err
	}
	for _, g := range inv.Groups {
		err := c.gather(ctx, &VehiclesRequest{GroupID: g.ID}, func(m Message) {
			if v, ok := m.(*Vehicle); ok {
				switch {
				case inv.Listed >= MaxVehicles:
					inv.Truncated = true
				case lister != nil:
					v.GroupID = g.ID
					inv.Listed++
					lister.ListVehicle(*v)
				default:
					v.GroupID = g.ID
					inv.Listed++
					inv.Vehicles = append(inv.Vehicles, *v)
				}
			}
		})
		if err != nil {
			return inv, err
		}
	}
	inv.Collected = time.Now()
	return inv, nil
}

// gather writes req (1008 or 1010) and hands the list frames that answer it
// to add until the list is complete.
//
// The protocol marks no end of a list, and the platform sends positions on
// the same stream: when it is busy, the list queues behind them, and a
// reader working through that backlog sees no list frame for a long time
// although the platform sent nothing but the list. So silence is measured
// in two ways that a backlog cannot fool (docs/protocol.md, "When a list is
// complete"):
//
//   - the reader's idle clock (waitWatch): time spent waiting on an empty
//     socket with every frame that arrived handed out. Reading a backlog
//     is not idle; waiting is, and what arrives meanwhile is read at once.
//   - a barrier: a heartbeat written right after the request. A platform
//     that answers heartbeats, and a connection's requests in order,
//     answers it after the last frame of the list, however much was queued
//     ahead. Once its answer has been read, every frame read afterwards was
//     sent after the list, and all time counts.
//
// The list is complete when InventoryQuiet of that silence has passed
// since its last frame (or the request), and the barrier has been answered
// if the platform answers heartbeats (barrierWanted). The first frame
// answers the request, and is awaited as an answer is, for at least
// CommandTimeout: a platform slow to begin a list (or a busy machine) is
// not a platform with nothing to list, and an empty inventory would be
// taken for one. An empty list costs the longer wait.
func (c *Client) gather(ctx context.Context, req Message, add func(Message)) error {
	if err := c.write(req); err != nil {
		return err
	}
	barrier, err := c.beat()
	if err != nil {
		return err
	}
	now := time.Now()
	l := listWatch{quiet: c.cfg.InventoryQuiet, first: max(c.cfg.InventoryQuiet, c.cfg.CommandTimeout), sent: now, last: now}
	l.idleSent, l.idleLast = c.idle(), c.idle()
	timer := time.NewTimer(l.need())
	defer timer.Stop()
	for {
		// Take every list frame read so far first: the reader hands them
		// over before it reads on, so no idle time counted below comes
		// before one of them.
		for taken := true; taken; {
			select {
			case m := <-c.inv:
				add(m)
				l.frame(time.Now(), c.idle())
			default:
				taken = false
			}
		}
		now, idle := time.Now(), c.idle()
		if l.answered.IsZero() && c.beatsAnswered.Load() >= barrier {
			l.answer(now, idle)
		}
		wanted, until := c.barrierWanted(&l, now, idle)
		quiet := l.silence(now, idle)
		if quiet >= l.need() && !wanted {
			return nil
		}
		if !l.warned && now.Sub(l.last) >= listPatience {
			l.warned = true
			c.log.Warn().Stringer("request", req.Cmd()).Dur("since_last_frame", now.Sub(l.last)).Dur("idle", idle-l.idleLast).
				Bool("barrier_wanted", wanted).Msg("inventory list not yet complete: the platform's stream has not rested since its last frame")
		}
		wait := l.need() - quiet
		if wait <= 0 {
			wait = until // only the barrier is missing
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return ErrClosed
		case m := <-c.inv:
			add(m)
			l.frame(time.Now(), c.idle())
		case <-c.beatSeen:
		case <-timer.C:
		}
	}
}

// barrierWanted reports whether the list must wait for its barrier's
// answer, and for how long at most it will. A platform that has answered a
// heartbeat on this connection is waited for HeartbeatMisses intervals;
// one that has not yet (the first list after a login) for CommandTimeout of
// the reader's idle time, after which it is taken not to answer them and no
// barrier is waited for again on this connection.
func (c *Client) barrierWanted(l *listWatch, now time.Time, idle time.Duration) (bool, time.Duration) {
	switch {
	case !l.answered.IsZero() || c.beatSilent.Load():
		return false, 0
	case c.beatAnswered.Load():
		patience := HeartbeatMisses * c.cfg.Heartbeat
		if left := patience - now.Sub(l.sent); left > 0 {
			return true, left
		}
		if !l.gaveUp {
			l.gaveUp = true
			c.log.Warn().Dur("waited", patience).Msg("heartbeat after an inventory request unanswered; the list ends on silence alone")
		}
		return false, 0
	default:
		if left := c.cfg.CommandTimeout - (idle - l.idleSent); left > 0 {
			return true, left
		}
		if !c.beatSilent.Swap(true) {
			c.log.Info().Msg("platform does not answer heartbeats; inventory lists end on silence alone")
		}
		return false, 0
	}
}

// listWatch is what gather has seen of one list: when its request was
// written, its last frame taken, and its barrier answered, each with the
// reader's idle clock at that moment.
type listWatch struct {
	quiet              time.Duration // InventoryQuiet
	first              time.Duration // the silence before the first frame: at least CommandTimeout
	frames             int           // list frames taken
	sent, last         time.Time
	idleSent, idleLast time.Duration
	answered           time.Time // zero until the barrier is answered
	idleAnswered       time.Duration
	gaveUp             bool // the barrier was given up on
	warned             bool // the list has been logged as slow
}

// listPatience is how long a list waits for its end before the log says
// so; it waits on all the same.
const listPatience = time.Minute

func (l *listWatch) frame(now time.Time, idle time.Duration) {
	l.last, l.idleLast = now, idle
	l.frames++
}

// need returns the silence that ends the list: longer before its first
// frame, which answers the request.
func (l *listWatch) need() time.Duration {
	if l.frames == 0 {
		return l.first
	}
	return l.quiet
}

func (l *listWatch) answer(now time.Time, idle time.Duration) { l.answered, l.idleAnswered = now, idle }

// silence returns how long the platform has been seen to send nothing of
// the list since its last frame (or the request): the reader's idle time
// until the barrier was answered, and all the time since.
func (l *listWatch) silence(now time.Time, idle time.Duration) time.Duration {
	if l.answered.IsZero() {
		return idle - l.idleLast
	}
	if l.last.After(l.answered) {
		return now.Sub(l.last)
	}
	return (l.idleAnswered - l.idleLast) + now.Sub(l.answered)
}
