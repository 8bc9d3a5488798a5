package mqtt

// message is one publish waiting for the broker.
type message struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// queue is a FIFO ring of messages that grows as needed up to its limit and
// gives its memory back when it empties, so a long outage costs memory only
// while it lasts.
type queue struct {
	buf        []message
	head, size int
	limit      int
}

func (q *queue) len() int { return q.size }

// push adds m at the back. When the queue is full it drops the oldest
// message to make room and reports true: in an outage the newest positions
// are worth more than the oldest.
func (q *queue) push(m message) (dropped bool) {
	if q.size == q.limit {
		q.buf[q.head] = message{}
		q.head = (q.head + 1) % len(q.buf)
		q.size--
		dropped = true
	}
	if q.size == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.size)%len(q.buf)] = m
	q.size++
	return dropped
}

// pushFront puts back a message that could not be sent, ahead of the rest.
// It drops the message instead when the queue is full.
func (q *queue) pushFront(m message) (dropped bool) {
	if q.size == q.limit {
		return true
	}
	if q.size == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = m
	q.size++
	return false
}

func (q *queue) pop() (message, bool) {
	if q.size == 0 {
		return message{}, false
	}
	m := q.buf[q.head]
	q.buf[q.head] = message{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 {
		q.head = 0
		if len(q.buf) > 1024 {
			q.buf = nil // an outage is over; give its memory back
		}
	}
	return m, true
}

func (q *queue) grow() {
	n := min(max(2*len(q.buf), 64), q.limit)
	nb := make([]message, n)
	for i := range q.size {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}
