//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// publisher is the `exlive-bench publisher` subcommand: a plain
// paho.mqtt.golang publisher, as its maintainers advise one be written
// (order off, every token waited, a bounded in-flight window), sending the
// (topic, payload) pairs of a file. It talks to the parent on stdin and
// stdout: "ready" once loaded and connected, then it waits for a line on
// stdin, publishes, prints "done N FAILED", and exits when stdin closes. It
// runs as its own process so that its CPU time can be read apart from the
// load tool's.
func publisher(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("exlive-bench publisher", flag.ContinueOnError)
	var (
		url      = fs.String("broker", "tcp://127.0.0.1:1883", "broker `URL`")
		qos      = fs.Int("qos", 1, "QoS 0 or 1")
		retain   = fs.Bool("retain", true, "publish retained")
		inflight = fs.Int("inflight", 1000, "most publishes awaiting their token at once")
		file     = fs.String("pairs", "", "file of (topic, payload) pairs, as written by the load tool")
		clientID = fs.String("client-id", "exlive-bench-publisher", "MQTT client id")
		profile  = fs.String("cpuprofile", "", "write a CPU profile of the publishing to `file`")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The pairs are mapped, not read into the heap: a publisher's heap
	// holds what it is publishing, not a run's worth of messages (which
	// would also put off its garbage collections for the whole run).
	data, err := mapFile(*file)
	if err != nil {
		return err
	}
	topics := map[string]string{}
	if _, err := eachPair(data, func(topic, _ []byte) {
		if _, ok := topics[string(topic)]; !ok {
			topics[string(topic)] = string(topic)
		}
	}); err != nil {
		return err
	}
	opts := paho.NewClientOptions().AddBroker(*url).SetClientID(*clientID).
		SetCleanSession(true).
		SetOrderMatters(false).
		SetAutoReconnect(false).
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second)
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publisher: connect to %s: %v", *url, tok.Error())
	}
	defer pc.Disconnect(250)
	fmt.Fprintln(stdout, "ready")
	in := bufio.NewReader(stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return fmt.Errorf("publisher: waiting for go: %w", err)
	}

	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var failed atomic.Int64
	window := make(chan paho.Token, *inflight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tok := range window {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				failed.Add(1)
			}
		}
	}()
	// Each payload is copied, as a publisher builds each message it sends
	// (and as the bridge does): paho keeps the slice until it is written.
	n, _ := eachPair(data, func(topic, payload []byte) {
		window <- pc.Publish(topics[string(topic)], byte(*qos), *retain, bytes.Clone(payload))
	})
	close(window)
	<-done
	fmt.Fprintf(stdout, "done %d %d\n", n, failed.Load())
	io.Copy(io.Discard, in)
	return nil
}

func writePairs(path string, pairs []pair) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n [binary.MaxVarintLen64]byte
	for _, p := range pairs {
		w.Write(n[:binary.PutUvarint(n[:], uint64(len(p.topic)))])
		w.WriteString(p.topic)
		w.Write(n[:binary.PutUvarint(n[:], uint64(len(p.payload)))])
		w.Write(p.payload)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mapFile maps a file read-only.
func mapFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return nil, nil
	}
	return syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
}

// eachPair calls f with each (topic, payload) of a pairs file, in order.
func eachPair(b []byte, f func(topic, payload []byte)) (int, error) {
	n := 0
	for len(b) > 0 {
		var fields [2][]byte
		for i := range fields {
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return n, errors.New("publisher: pairs file is corrupt")
			}
			fields[i] = b[k : k+int(l)]
			b = b[k+int(l):]
		}
		f(fields[0], fields[1])
		n++
	}
	return n, nil
}
