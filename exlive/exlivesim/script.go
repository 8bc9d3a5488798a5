package exlivesim

import (
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
)

// A capture shows one conversation; a replay has a different client, whose
// frames come at other times, in another number, perhaps in another order.
// The script says what the replay sends, and when, whatever the client
// does. Each frame the platform sent is either an answer, tied to the
// client's frame it answers, or the platform's own, tied to the login:
//
//   - An 8000 answers the oldest frame of its command the client had sent
//     and not yet had answered (first in, first out, as the session matches
//     them); 1009s answer the 1008 before them, 1011s the 1010 before them
//     (by group id), a 1013 the 1012 for its terminal before it. These are
//     sent when the client sends the frame they answer: the replay's n-th
//     frame of a kind (a 1010 for one group is a kind of its own) gets what
//     the capture's n-th got, after the same delay; once the capture has no
//     n-th, what the last one that got an answer got, or nothing if none
//     did (frames after the last answered one of their kind count as
//     beyond the capture: it ended before their answer came). So
//     heartbeats are answered when they come, as the capture's were; a
//     command the capture never sent is never answered.
//   - Every other frame (positions, 1003, a 1013 no 1012 asked for, an
//     8000 nothing asked for, unknown commands, junk) keeps its time from
//     the client's login request; frames before the login keep their time
//     from the connection.
//
// A login answered with a refusal is followed by the end of the
// connection, as the platform does; so is a capture whose platform closed
// the connection, at that time.

// trigger is a kind of frame the client sends.
type trigger struct {
	cmd   exlive.Cmd
	group string // of a 1010
}

func triggerOf(m exlive.Message) trigger {
	t := trigger{cmd: m.Cmd()}
	if r, ok := m.(*exlive.VehiclesRequest); ok {
		t.group = r.GroupID
	}
	return t
}

// reply is something the replay sends: bytes, or the end of the connection.
type reply struct {
	at    time.Duration // after what it is tied to, in the capture's time
	line  int           // of the capture, to keep the capture's order on ties
	wire  []byte
	close bool // close the connection after the wire
}

type script struct {
	early    []reply               // before the login request: at is since the connection
	timeline []reply               // after it: at is since the login request
	answers  map[trigger][][]reply // per kind, the replies to each captured frame of it
	fallback map[trigger]int       // per kind, the last captured frame that had a reply
}

// answer returns the replies to the client's rank-th frame of kind t,
// counting from 0.
func (s *script) answer(t trigger, rank int) []reply {
	ex := s.answers[t]
	if rank < len(ex) {
		return ex[rank]
	}
	if i, ok := s.fallback[t]; ok {
		return ex[i]
	}
	return nil
}

// request is a frame the client sent, in the capture.
type request struct {
	t     trigger
	rank  int
	at    time.Duration
	dev   string // the terminal of a 1012
	reply bool   // a 1013 has answered this 1012
}

// scriptBuilder ties a capture's frames to what they answer, in order.
type scriptBuilder struct {
	s       script
	login   bool
	loginAt time.Duration
	pending map[exlive.Cmd][]*request // awaiting their 8000, oldest first
	last    map[exlive.Cmd]*request   // the latest 1008, 1010
	devices []*request                // 1012s, oldest first
}

func newScriptBuilder() *scriptBuilder {
	return &scriptBuilder{
		s:       script{answers: make(map[trigger][][]reply), fallback: make(map[trigger]int)},
		pending: make(map[exlive.Cmd][]*request),
		last:    make(map[exlive.Cmd]*request),
	}
}

// sent notes a frame of the client's.
func (b *scriptBuilder) sent(at time.Duration, m exlive.Message) {
	t := triggerOf(m)
	r := &request{t: t, rank: len(b.s.answers[t]), at: at}
	b.s.answers[t] = append(b.s.answers[t], nil)
	b.pending[t.cmd] = append(b.pending[t.cmd], r)
	b.last[t.cmd] = r
	switch m := m.(type) {
	case *exlive.Login:
		if !b.login {
			b.login, b.loginAt = true, at
		}
	case *exlive.Passthrough:
		r.dev = m.TerminalID
		b.devices = append(b.devices, r)
	}
}

// received places a frame of the platform's (m nil when it did not decode,
// or for the end of the connection).
func (b *scriptBuilder) received(rp reply, m exlive.Message) {
	var to *request
	switch m := m.(type) {
	case *exlive.Answer:
		if q := b.pending[m.Command]; len(q) > 0 {
			to, b.pending[m.Command] = q[0], q[1:]
			if m.Command == exlive.CmdLogin && !m.OK() {
				rp.close = true // the platform closes after a refusal
			}
		}
	case *exlive.Group:
		to = b.last[exlive.CmdGroupsRequest]
	case *exlive.Vehicle:
		to = b.last[exlive.CmdVehiclesRequest]
	case *exlive.PassthroughReply:
		for i, r := range b.devices {
			if r.dev == m.TerminalID {
				to = r
				b.devices = append(b.devices[:i:i], b.devices[i+1:]...)
				break
			}
		}
	}
	switch {
	case to != nil:
		rp.at -= to.at
		b.s.answers[to.t][to.rank] = append(b.s.answers[to.t][to.rank], rp)
	case b.login:
		rp.at -= b.loginAt
		b.s.timeline = append(b.s.timeline, rp)
	default:
		b.s.early = append(b.s.early, rp)
	}
}

func (b *scriptBuilder) script() script {
	for t, ex := range b.s.answers {
		for i, r := range ex {
			if len(r) > 0 {
				b.s.fallback[t] = i
			}
		}
		// Frames left unanswered after the last answered one of their
		// kind show only that the capture ended before the answer came
		// (a probe logs out a moment after its last heartbeat): beyond
		// the capture, not a platform that stopped answering.
		if i, ok := b.s.fallback[t]; ok {
			b.s.answers[t] = ex[:i+1]
		}
	}
	return b.s
}
