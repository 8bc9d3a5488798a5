package exlive

import (
	"sync"
	"time"
)

// pending holds the requests that await an 8000 answer, in order per
// command. The platform's answers carry no request id, so the first answer
// for a command goes to the oldest request for it.
//
// A request that timed out stays in its queue as a ghost for one more
// timeout, when its command is one the platform is known to answer: if the
// late answer comes, the ghost takes it, and the next request is not handed
// an answer that was meant for the one before. A false timeout is better than
// a false success.
//
// Queues are per command, so the answers a live server sends to every
// heartbeat (8000 with cmd 1002) never reach the queue of a 1004 or 1012:
// heartbeats are written, never requested, so no queue for 1002 exists and
// the session takes those answers as signs of life (Client.dispatch). An
// answer whose cmd is missing or unreadable (Command 0) finds no queue
// either: it is handed over as unmatched, never given to a request by
// guess.
type pending struct {
	mu     sync.Mutex
	queues map[Cmd][]*waiter
	n, max int
	err    error // set once the connection is done
}

type waiterState uint8

const (
	live     waiterState = iota // awaiting its answer
	ghost                       // timed out, kept to absorb a late answer
	finished                    // done has been called, or never will be
)

type waiter struct {
	cmd     Cmd
	done    func(*Answer, error)
	timer   *time.Timer
	state   waiterState // guarded by pending.mu
	forgets time.Time   // a ghost is forgotten after this
}

// answered lists the commands the protocol says the platform answers with
// 8000. Whether it answers the others is unknown; ghosts of those would eat
// the answers of later requests if it never does.
func answered(c Cmd) bool {
	return c == CmdLogin || c == CmdVehicleCommand || c == CmdPassthrough
}

func (p *pending) init(max int) {
	p.queues = make(map[Cmd][]*waiter)
	p.max = max
}

func (p *pending) add(cmd Cmd, timeout time.Duration, done func(*Answer, error)) (*waiter, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	p.pruneLocked(cmd, time.Now())
	if p.n >= p.max {
		return nil, ErrTooManyPending
	}
	w := &waiter{cmd: cmd, done: done}
	w.timer = time.AfterFunc(timeout, func() { p.timeout(w, timeout) })
	p.queues[cmd] = append(p.queues[cmd], w)
	p.n++
	return w, nil
}

// remove takes back a request that was never sent. It reports false when
// the request's done has been called already (its timeout fired first).
func (p *pending) remove(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.state != live {
		return false
	}
	w.state = finished
	w.timer.Stop()
	p.dropLocked(w)
	return true
}

func (p *pending) dropLocked(w *waiter) {
	q := p.queues[w.cmd]
	for i, x := range q {
		if x == w {
			p.queues[w.cmd] = append(q[:i:i], q[i+1:]...)
			p.n--
			return
		}
	}
}

func (p *pending) timeout(w *waiter, timeout time.Duration) {
	p.mu.Lock()
	if w.state != live {
		p.mu.Unlock()
		return
	}
	if answered(w.cmd) {
		w.state = ghost
		w.forgets = time.Now().Add(timeout)
	} else {
		w.state = finished
		p.dropLocked(w)
	}
	p.mu.Unlock()
	w.done(nil, ErrTimeout)
}

// pruneLocked forgets ghosts at the head of a queue whose time is up.
func (p *pending) pruneLocked(cmd Cmd, now time.Time) {
	q := p.queues[cmd]
	i := 0
	for i < len(q) && q[i].state == ghost && now.After(q[i].forgets) {
		q[i].state = finished
		q[i] = nil
		i++
	}
	if i > 0 {
		p.queues[cmd] = q[i:]
		p.n -= i
	}
}

// answer hands a to the oldest request for its command. It reports false
// when no request awaits one (the answer is then the caller's to report).
func (p *pending) answer(a *Answer) bool {
	p.mu.Lock()
	p.pruneLocked(a.Command, time.Now())
	q := p.queues[a.Command]
	if len(q) == 0 {
		p.mu.Unlock()
		return false
	}
	w := q[0]
	q[0] = nil
	p.queues[a.Command] = q[1:]
	p.n--
	was := w.state
	w.state = finished
	p.mu.Unlock()
	if was == live {
		w.timer.Stop()
		w.done(a, nil)
	}
	// A ghost's answer came late; its request has had its timeout.
	return true
}

// fail ends every request with err; later adds fail with it too.
func (p *pending) fail(err error) {
	p.mu.Lock()
	var ended []*waiter
	for _, q := range p.queues {
		for _, w := range q {
			if w.state == live {
				ended = append(ended, w)
			}
			w.state = finished
		}
	}
	clear(p.queues)
	p.n = 0
	p.err = err
	p.mu.Unlock()
	for _, w := range ended {
		w.timer.Stop()
		w.done(nil, err)
	}
}

// len returns how many requests, ghosts included, are held.
func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
