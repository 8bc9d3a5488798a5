package exlive_test

import (
	"context"
	"fmt"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
)

// A Session logs in, collects the account's groups and vehicles, and hands
// over what the platform sends; requests go through it from any goroutine.
// Here it runs against the simulated platform.
func ExampleSession() {
	sim := exlivesim.New(exlivesim.Config{Vehicles: 3, Rate: 20})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer sim.Close()

	cfg := exlive.Defaults()
	cfg.Addr, cfg.User, cfg.Pass = sim.Addr(), exlivesim.DefaultUser, exlivesim.DefaultPass
	cfg.InventoryQuiet = 500 * time.Millisecond // the simulator answers at once
	if err := cfg.Validate(); err != nil {
		panic(err)
	}

	inventory := make(chan exlive.Inventory, 1)
	position := make(chan exlive.Position, 1)
	h := exlive.Handlers{
		Inventory: func(inv exlive.Inventory) { inventory <- inv },
		Message: func(m exlive.Message) {
			if p, ok := m.(*exlive.Position); ok {
				select {
				case position <- *p: // copied: the session reuses *p
				default:
				}
			}
		},
	}
	s := exlive.New(cfg, h, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	inv := <-inventory
	fmt.Println("vehicles:", len(inv.Vehicles))
	p := <-position
	fmt.Println("position of a known vehicle:", p.ID != "" && p.Time.Valid)

	a, err := s.Request(ctx, &exlive.VehicleCommand{ID: "V1", Data: "STOP"})
	fmt.Println("answer:", a.Result, err)

	cancel() // logs out
	<-done
	// Output:
	// vehicles: 3
	// position of a known vehicle: true
	// answer: succeed <nil>
}
