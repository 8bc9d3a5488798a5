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
	Groups    []Group
	Vehicles  []Vehicle
	Collected time.Time
	// Truncated is set when the platform listed more than MaxGroups or
	// MaxVehicles; the rest were left out.
	Truncated bool
}

// inventoryLoop collects the inventory after login and then every
// InventoryInterval. The protocol has no end marker after a run of 1009 or
// 1011 frames: a list is complete when InventoryQuiet passes without another
// (see gather).
// Vehicles are asked for one group at a time, because 1011 does not say
// which group it belongs to.
func (c *Client) inventoryLoop(ctx context.Context) error {
	for {
		inv, err := c.collect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.log.Info().Int("groups", len(inv.Groups)).Int("vehicles", len(inv.Vehicles)).
			Bool("truncated", inv.Truncated).Msg("inventory collected")
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
	inv := Inventory{}
	if err := c.write(&GroupsRequest{Client: true}); err != nil {
		return inv, err
	}
	err := c.gather(ctx, func(m Message) {
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
		if err := c.write(&VehiclesRequest{GroupID: g.ID}); err != nil {
			return inv, err
		}
		err := c.gather(ctx, func(m Message) {
			if v, ok := m.(*Vehicle); ok {
				if len(inv.Vehicles) < MaxVehicles {
					v.GroupID = g.ID
					inv.Vehicles = append(inv.Vehicles, *v)
				} else {
					inv.Truncated = true
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

// gather hands the inventory frames that arrive to add until none has come
// for InventoryQuiet. The first frame answers the request, and is awaited
// as an answer is, up to CommandTimeout: a platform slow to begin a list
// (or a busy machine) is not a platform with nothing to list, and an empty
// inventory would replace the retained lists. An empty list costs the
// longer wait.
func (c *Client) gather(ctx context.Context, add func(Message)) error {
	quiet := time.NewTimer(max(c.cfg.InventoryQuiet, c.cfg.CommandTimeout))
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return ErrClosed
		case m := <-c.inv:
			add(m)
			quiet.Reset(c.cfg.InventoryQuiet)
		case <-quiet.C:
			return nil
		}
	}
}
