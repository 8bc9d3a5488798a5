package exlive_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
)

// BenchmarkClientReadBacklog is positions read by a logged-in Client from a
// real loopback socket, framed, decoded and handed over, as fast as the
// simulator writes a pre-encoded backlog ahead of the inventory's answer:
// the read path with its idle clock (waitWatch). The simulator's writing
// is in the time too.
func BenchmarkClientReadBacklog(b *testing.B) {
	srv := exlivesim.New(exlivesim.Config{Vehicles: 100, Rate: 0, Backlog: b.N})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	var n atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	h := exlive.Handlers{Message: func(m exlive.Message) {
		if _, ok := m.(*exlive.Position); ok && n.Add(1) == want {
			close(done)
		}
	}}
	cfg := exlive.Defaults()
	cfg.Addr, cfg.User, cfg.Pass = srv.Addr(), exlivesim.DefaultUser, exlivesim.DefaultPass
	nc, err := exlive.Dial(context.Background(), cfg.Addr)
	if err != nil {
		b.Fatal(err)
	}
	c := exlive.NewClient(nc, cfg, h, zerolog.Nop())
	if err := c.Login(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	b.ResetTimer()
	go func() { served <- c.Serve(ctx) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d positions in 5 minutes", n.Load(), want)
	}
	b.StopTimer()
	cancel()
	<-served
}
