package mqtt

import (
	"errors"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Poison messages.
//
// Some brokers close the connection over a publish they refuse instead of
// answering it: NATS's MQTT server over a topic holding '.' or a space,
// others over a packet larger than they take. paho keeps an unacknowledged
// QoS 1 message in its store and sends it again first thing on the next
// connection, so such a message would take every connection down, forever,
// and hold up everything behind it.
//
// The rule: a broker handles the publishes of a connection in the order they
// were sent and acknowledges each before it reads the next, so the message
// it refused is the oldest one sent on the lost connection that it did not
// acknowledge (the suspect). A message that is the suspect at poisonStrikes
// consecutive connection losses is poison: it is deleted from paho's store
// (not sent again), counted (Stats.Poison; Dropped too when this run
// accepted it), logged with its topic, and its topic is refused for
// poisonRefusal (ErrTopicRefused, counted Invalid), so that the next
// messages on it do not take the connection down again; after that one
// message on it may try again, and a topic found poison a second time is
// refused until the process restarts.
//
// Where the broker's close also loses the acknowledgements it sent just
// before (a reset discards what the client had not read yet), the message
// found can be one sent just before the poison. The broker took that one
// (it acknowledged it): nothing is lost, but it is counted poison rather
// than published, and its topic refused for poisonRefusal; the poison is
// found at the next two losses. A message from an honest outage is
// acknowledged on the first connection that lasts one round trip; the rule
// takes it for poison only if two connections in a row die before that.
//
// paho v1.5.1 has no way to free the message id of a publish taken out of
// its store: each poison message keeps one of its 65535 ids until the
// process restarts. Refusing the topic for good at its second finding keeps
// their number at two a topic, and the topics remembered are at most
// maxRefusedTopics, so the ids cannot run out however long a broker keeps
// refusing (a vehicle whose id NATS refuses would otherwise leak an id every
// poisonRefusal, and all 65535 in some days with a fleet of them).
//
// QoS 0 has no acknowledgement, so nothing tells which message a broker
// refused, and the client does not guess: a QoS 0 message is never sent
// again, so a refused one costs one reconnect and never a loop; it and what
// was written after it on that connection are lost (counted published: they
// were written). Topics found poison at QoS 1 are refused at QoS 0 too.
const poisonStrikes = 2

// poisonRefusal is how long a topic found poison is refused.
const poisonRefusal = 10 * time.Minute

// maxRefusedTopics bounds the topics remembered (refused, or found poison
// once); beyond it a poison message is still found and dropped, its topic
// not refused.
const maxRefusedTopics = 4096

// refusal is what the client remembers of a topic found poison.
type refusal struct {
	until   time.Time // refused until then; zero: until the process restarts
	strikes int       // times found poison
}

func (r refusal) refuses(now time.Time) bool { return r.until.IsZero() || now.Before(r.until) }

// strike returns r after its topic was found poison once more at now:
// refused for poisonRefusal the first time, for good after that.
func (r refusal) strike(now time.Time) refusal {
	r.strikes++
	r.until = now.Add(poisonRefusal)
	if r.strikes > 1 {
		r.until = time.Time{}
	}
	return r
}

// ErrTopicRefused is returned by Publish for a topic the broker dropped the
// connection over (see poisonStrikes).
var ErrTopicRefused = errors.New("mqtt: the broker dropped the connection over a message on this topic")

// sentKey is one outbound publish in paho's store: its key, and which
// message under that key (paho reuses a key once its message is
// acknowledged).
type sentKey struct {
	key string
	seq uint64
}

// sendOrder follows the outbound publishes of the current connection in the
// order paho sends them: first what it resends from its store (it lists the
// store, then gets each key in turn), then each new publish as it stores it.
// The resumeStore calls it with its lock held.
type sendOrder struct {
	seq     uint64
	pending map[string]uint64 // stored and not acknowledged: key → seq
	sent    []sentKey         // this connection's, in order; stale entries are skipped
	suspect sentKey           // at the last connection loss
	strikes int               // consecutive losses with the same suspect
	used    bool              // a connection was made since the last check (see lost)
}

// listed starts a connection: paho lists its store to resend it.
func (o *sendOrder) listed() {
	o.sent = o.sent[:0]
	o.used = true
}

// stored records a new publish put in the store.
func (o *sendOrder) stored(key string) {
	o.seq++
	o.pending[key] = o.seq
	o.send(sentKey{key, o.seq})
}

// resent records a stored publish paho gets to send again; a key from an
// earlier run's file store is new here.
func (o *sendOrder) resent(key string) {
	seq, ok := o.pending[key]
	if !ok {
		o.seq++
		seq = o.seq
		o.pending[key] = seq
	}
	o.send(sentKey{key, seq})
}

func (o *sendOrder) send(k sentKey) {
	o.sent = append(o.sent, k)
	if len(o.sent) > 2*len(o.pending)+256 {
		// Acknowledged messages behind one that is not: drop them, so a
		// long connection does not grow the list.
		live := o.sent[:0]
		for _, s := range o.sent {
			if o.valid(s) {
				live = append(live, s)
			}
		}
		clear(o.sent[len(live):])
		o.sent = live
	}
}

// acked records that a stored publish was acknowledged (or deleted).
func (o *sendOrder) acked(key string) {
	delete(o.pending, key)
	for len(o.sent) > 0 && !o.valid(o.sent[0]) {
		o.sent[0] = sentKey{}
		o.sent = o.sent[1:]
	}
}

func (o *sendOrder) valid(s sentKey) bool {
	seq, ok := o.pending[s.key]
	return ok && seq == s.seq
}

// lost records a connection loss, and returns the key of the message found
// poison, if any. The suspect is the oldest message (the smallest seq)
// sent on the connection and not acknowledged: paho resends its store
// oldest first, ahead of new messages, so the oldest was written first,
// even where the order of the calls to Get and Put differs from that of the
// writes by a message or two.
func (o *sendOrder) lost() (string, bool) {
	first := sentKey{}
	for _, s := range o.sent {
		if o.valid(s) && (first.key == "" || s.seq < first.seq) {
			first = s
		}
	}
	switch {
	case first.key == "":
		o.suspect, o.strikes = sentKey{}, 0
		return "", false
	case first == o.suspect:
		o.strikes++
	default:
		o.suspect, o.strikes = first, 1
	}
	if o.strikes < poisonStrikes {
		return "", false
	}
	o.suspect, o.strikes = sentKey{}, 0
	return first.key, true
}

// poisoned is what a connection loss found poison.
type poisoned struct {
	topic    string
	qos      byte
	accepted bool // by this run: settled dropped
}

// lost records a connection loss (see sendOrder.lost). A message found
// poison is deleted from the store; settle is called when this run accepted
// it, before the store lets go of it (see Client.Stats).
func (s *resumeStore) lost(settle func()) (poisoned, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.order.used {
		return poisoned{}, false // no connection since the last attempt
	}
	s.order.used = false
	key, ok := s.order.lost()
	if !ok {
		return poisoned{}, false
	}
	id, _ := outboundID(key)
	if o, mine := s.dropOwn(id); mine {
		settle()
		return poisoned{topic: o.m.topic, qos: o.m.qos, accepted: true}, true
	}
	pub, ok := s.get(key).(*packets.PublishPacket)
	if !ok {
		s.order.acked(key) // gone from the store: nothing to drop
		return poisoned{}, false
	}
	p := poisoned{topic: pub.TopicName, qos: pub.Qos}
	s.del(key)
	s.ids.clear(id)
	s.order.acked(key)
	if _, ok := s.held[key]; ok {
		delete(s.held, key)
		p.accepted = true
		settle()
	}
	return p, true
}

// onPoison drops what the loss of the last connection found poison (see
// poisonStrikes), and refuses its topic from then on. paho calls it, through
// the connection attempt handler, before each connection attempt: after the
// last connection's workers stopped and before the next one resends the
// store, so a poison message is not sent again. (OnConnectionLost runs on
// a goroutine of its own, alongside the reconnect.)
func (c *Client) onPoison() {
	p, ok := c.store.lost(func() { c.settle(dropped, 1) })
	if !ok {
		return
	}
	c.poison.Add(1)
	now := time.Now()
	c.mu.Lock()
	r, again := c.refused[p.topic]
	if !again && len(c.refused) >= maxRefusedTopics {
		for t, r := range c.refused {
			if !r.refuses(now) {
				delete(c.refused, t)
			}
		}
	}
	if again || len(c.refused) < maxRefusedTopics {
		r = r.strike(now)
		c.refused[p.topic] = r
	}
	c.mu.Unlock()
	refusedFor := poisonRefusal
	if r.until.IsZero() {
		refusedFor = 0
	}
	// Once for each topic; again (a topic found poison again after its
	// refusal ended) at most every 10 s.
	var held uint64
	if !again {
		held = c.poisonLog.Force()
	} else if held, ok = c.poisonLog.Allow(); !ok {
		return
	}
	ev := c.log.Warn().Str("topic", shorten(p.topic)).Uint8("qos", p.qos).Int("losses", poisonStrikes).
		Int("times", r.strikes).Uint64("poison_since_last_warning", held)
	if refusedFor > 0 {
		ev.Dur("refused_for", refusedFor).Msg("broker dropped the connection over a message: dropped, and its topic refused for a while")
	} else {
		ev.Msg("broker dropped the connection over a message again: dropped, and its topic refused until restart")
	}
}

// refusedTopic reports whether topic is refused: the broker dropped the
// connection over a message on it less than poisonRefusal ago, or twice.
// An ended refusal is remembered (onPoison counts the strikes). Call with
// c.mu held.
func (c *Client) refusedTopic(topic string) bool {
	if len(c.refused) == 0 {
		return false
	}
	r, ok := c.refused[topic]
	return ok && r.refuses(time.Now())
}
