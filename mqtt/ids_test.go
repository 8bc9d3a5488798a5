package mqtt

import (
	"math/rand/v2"
	"slices"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// pahoIDs models paho v1.5.1's messageIds (messageids.go): getID takes the
// first id after the last it issued that its map does not hold, claimID
// (resume) takes an id and raises the counter to it if larger, freeID
// (every PUBACK, SUBACK, UNSUBACK) lets an id go.
type pahoIDs struct {
	index map[uint16]bool
	last  uint16
}

func (p *pahoIDs) getID() uint16 {
	i, looped := p.last, false
	for {
		i++
		if i == 0 {
			i++
			looped = true
		}
		if !p.index[i] {
			p.index[i] = true
			p.last = i
			return i
		}
		if looped && i == p.last || p.last == 0 && i == 65535 {
			return 0
		}
	}
}

func (p *pahoIDs) claimID(id uint16) {
	p.index[id] = true
	if id > p.last {
		p.last = id
	}
}

// TestMsgIDsKeepClearOfPaho runs msgIDs beside a model of paho's ids through
// millions of random steps: paho numbering publishes and subscriptions
// (seen by the store up to a few steps later), the client taking ids for
// its own messages (up to a window of them), acknowledgements of both in any
// order (each frees the id in paho's map too, as paho's router does),
// reconnects (paho lists its store at once and claims what it lists over
// the next steps, while it numbers new packets). Neither may ever take an
// id the other holds. paho's counter wraps around several times.
//
// What msgIDs assumes (see ids.go), the steps keep: a message of the
// client's is acknowledged before paho's counter moves idReserve/2 ids by
// numbering packets, and one of paho's within 30 000 packets (left unacknowledged while paho numbers a
// whole round of 65 535 others, it could raise paho's counter at a resume
// to where the client's ids are).
func TestMsgIDsKeepClearOfPaho(t *testing.T) {
	for _, mix := range []struct {
		name string
		paho float64 // share of steps that are paho numbering something
		own  int     // window of the client's own messages
	}{{"mostly-own", 0.02, 1000}, {"even", 0.3, 1000}, {"mostly-paho", 0.7, 200}, {"big-window", 0.05, 60000}} {
		t.Run(mix.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(mix.own)))
			var m msgIDs
			p := &pahoIDs{index: make(map[uint16]bool)}
			pahoStored := make(map[uint16]int) // id → paho's allocation number
			var pahoList []uint16
			own := make(map[uint16]int) // id → travel when taken
			var ownList []uint16
			var puts, claims []uint16 // paho's stores and claims still to come
			allocs := 0
			travel := 0                 // ids paho's counter moved by numbering (not claiming)
			pos := make(map[uint16]int) // id → index in ownList or pahoList
			pickAck := func(list []uint16, i int) ([]uint16, uint16) {
				id := list[i]
				list[i] = list[len(list)-1]
				pos[list[i]] = i
				delete(pos, id)
				return list[:len(list)-1], id
			}
			// oldest returns the index in list of an id held longer than
			// limit of paho's allocations, if any: the head of q, which
			// holds ids in the order taken (stale entries skipped).
			type taken struct {
				id uint16
				at int
			}
			var ownQ, pahoQ []taken
			oldest := func(q *[]taken, held map[uint16]int, list []uint16, now, limit int) (int, bool) {
				for len(*q) > 0 {
					h := (*q)[0]
					if at, ok := held[h.id]; !ok || at != h.at {
						*q = (*q)[1:]
						continue
					}
					if now-h.at <= limit {
						return 0, false
					}
					return pos[h.id], true
				}
				return 0, false
			}
			steps := 3_000_000
			for step := 0; step < steps; step++ {
				// paho numbers or has acknowledged, the client takes or has
				// acknowledged, in the mix's shares; the oldest first once
				// they are as old as assumed.
				r := rng.Float64()
				pahoSide, first := r < mix.paho, rng.IntN(2) == 0
				switch {
				case pahoSide && first:
					before := p.last
					id := p.getID()
					travel += int(p.last - before)
					if id == 0 {
						continue
					}
					if _, mine := own[id]; mine {
						t.Fatalf("step %d: paho took id %d, which the client holds (paho's counter %d, msgIDs thinks %d)", step, id, p.last, m.pahoLast)
					}
					allocs++
					pahoStored[id] = allocs
					pos[id] = len(pahoList)
					pahoList = append(pahoList, id)
					pahoQ = append(pahoQ, taken{id, allocs})
					puts = append(puts, id)
				case !pahoSide && first && len(own) < mix.own:
					id, ok := m.take()
					if !ok {
						continue
					}
					if _, mine := own[id]; p.index[id] || mine {
						t.Fatalf("step %d: the client took id %d, which paho holds", step, id)
					}
					if slices.Contains(puts, id) {
						t.Fatalf("step %d: the client took id %d, which paho took and has not stored yet", step, id)
					}
					own[id] = travel
					pos[id] = len(ownList)
					ownList = append(ownList, id)
					ownQ = append(ownQ, taken{id, travel})
				case !pahoSide && len(ownList) > 0:
					i, old := oldest(&ownQ, own, ownList, travel, idReserve/2)
					if !old {
						i = rng.IntN(len(ownList))
					}
					var id uint16
					ownList, id = pickAck(ownList, i)
					delete(own, id)
					m.clear(id)
					delete(p.index, id) // paho's router frees every acknowledged id
				case pahoSide && len(pahoList) > 0:
					i, old := oldest(&pahoQ, pahoStored, pahoList, allocs, 1000)
					if !old {
						i = rng.IntN(len(pahoList))
					}
					if slices.Contains(puts, pahoList[i]) {
						continue // not sent yet
					}
					var id uint16
					pahoList, id = pickAck(pahoList, i)
					delete(pahoStored, id)
					m.clear(id)
					delete(p.index, id)
				}
				// paho stores what it numbered a few steps late, and claims
				// what it listed one at a time.
				for len(puts) > 3 || len(puts) > 0 && rng.IntN(3) == 0 {
					m.pahoStored(puts[0])
					puts = puts[1:]
				}
				if len(claims) > 0 {
					// Acknowledged since the list: paho gets nothing for
					// the key, and claims nothing.
					if _, ok := pahoStored[claims[0]]; ok {
						p.claimID(claims[0])
					}
					claims = claims[1:]
				}
				if rng.IntN(20000) == 0 && len(puts) == 0 {
					// A reconnect: paho lists its store (which holds only
					// its own packets) and claims them as it resends them.
					claims = claims[:0]
					for id := range pahoStored {
						claims = append(claims, id)
					}
					m.listing(claims)
				}
			}
			if allocs < 65535 && mix.paho > 0.25 {
				t.Fatalf("paho numbered %d packets: its counter did not wrap", allocs)
			}
		})
	}
}

// TestMsgIDsAfterListing: once paho lists an id numerically above its
// counter (one it numbered before its counter wrapped), its counter jumps
// there as it claims it; the client keeps clear of the ids after it as well
// as of those after the counter, and of every id in the store.
func TestMsgIDsAfterListing(t *testing.T) {
	var m msgIDs
	for id := uint16(1); id <= 5; id++ {
		m.pahoStored(id)
	}
	m.listing([]uint16{3, 65000})
	m.next = 64990 // the client's ids were about to pass 65000
	seen := make(map[uint16]bool)
	for range 30000 {
		id, ok := m.take()
		if !ok {
			t.Fatal("no id left")
		}
		switch {
		case id <= 5 || id == 65000:
			t.Fatalf("took %d, which paho's store holds", id)
		case id > 5 && id <= 5+idReserve:
			t.Fatalf("took %d, after paho's counter (5)", id)
		case id > 65000 || int(id) <= 65000+idReserve-65536:
			t.Fatalf("took %d, after the id paho listed (65000)", id)
		case seen[id]:
			t.Fatalf("took %d twice", id)
		}
		seen[id] = true
	}
	// The next list holds nothing above the counter: those ids are free
	// again.
	m.listing(nil)
	m.next = 65000
	if id, _ := m.take(); id != 65001 {
		t.Fatalf("after a list without it, took %d, want 65001", id)
	}
}

// TestRenumber: should paho number a packet with an id a message of the
// client's holds (msgIDs keeps it from happening), the client's message
// moves to a free id, queued to be written again, and each settles once by
// its own acknowledgement.
func TestRenumber(t *testing.T) {
	var outcomes []outcome
	s := newResumeStore(paho.NewOrderedMemoryStore(), "", 10, func(string, any) {}, func(o outcome) { outcomes = append(outcomes, o) })
	var reported []uint16
	s.onOwn = func(id uint16) { reported = append(reported, id) }
	s.Open()
	s.All()
	s.listMu.Lock()
	id, res := s.putOwn(message{topic: "a", payload: []byte("x"), qos: 1})
	s.listMu.Unlock()
	if res != ownSent {
		t.Fatalf("putOwn = %v", res)
	}
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.TopicName, pub.MessageID = 1, "b", id
	s.Put(outboundKey(id), pub)

	if len(reported) != 1 || reported[0] != id {
		t.Fatalf("reported %v, want [%d]", reported, id)
	}
	s.listMu.Lock()
	again := s.takeResend(nil, 10)
	s.listMu.Unlock()
	if len(again) != 1 || again[0].id == id || again[0].m.topic != "a" {
		t.Fatalf("to write again: %+v, want the message on a under a new id", again)
	}
	if n := s.inFlight(); n != 2 {
		t.Fatalf("in flight %d, want 2 (paho's and the client's)", n)
	}
	s.Del(outboundKey(id))
	s.Del(outboundKey(again[0].id))
	if len(outcomes) != 2 || outcomes[0] != published || outcomes[1] != published || s.inFlight() != 0 {
		t.Fatalf("outcomes %v, %d in flight; want both published, none in flight", outcomes, s.inFlight())
	}
}

// TestOwnWaitsWhenNoIDIsFree: with a window larger than the ids msgIDs can
// give, the client's messages wait for an id as for room in the window,
// and go on as ids are let go.
func TestOwnWaitsWhenNoIDIsFree(t *testing.T) {
	s := newResumeStore(paho.NewOrderedMemoryStore(), "", 65000, func(string, any) {}, func(outcome) {})
	s.Open()
	s.All()
	var ids []uint16
	s.listMu.Lock()
	for {
		id, res := s.putOwn(message{topic: "a", qos: 1})
		if res == ownFull {
			break
		}
		if res != ownSent {
			t.Fatalf("putOwn = %v", res)
		}
		ids = append(ids, id)
	}
	s.listMu.Unlock()
	if len(ids) != 65535-idReserve {
		t.Fatalf("%d ids given, want all but paho's reserve", len(ids))
	}
	if room, _ := s.ownRoomNow(); room {
		t.Fatal("room reported with no id free")
	}
	_, roomCh := s.ownRoomNow()
	s.Del(outboundKey(ids[0]))
	select {
	case <-roomCh:
	default:
		t.Fatal("no wake-up when an id was let go")
	}
	if room, _ := s.ownRoomNow(); !room {
		t.Fatal("no room once an id was let go")
	}
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if id, res := s.putOwn(message{topic: "a", qos: 1}); res != ownSent || id != ids[0] {
		t.Fatalf("putOwn = %d, %v; want the id let go (%d)", id, res, ids[0])
	}
}
