// Package netproxy is a loopback TCP proxy for tests and the load harness:
// it counts request/response exchanges between a client and a server (to
// prove that a call costs one round trip) and can add latency each way (to
// measure as over a real network).
package netproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards every connection accepted on Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration

	exchanges atomic.Int64
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
}

// Start listens on a free loopback port and forwards to target, delaying
// every chunk of data by delay in each direction (zero: none).
func Start(target string, delay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, delay: delay, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Exchanges returns how many times, over all connections, a client started
// sending after the server had answered (or for the first time): the number
// of round trips the clients made.
func (p *Proxy) Exchanges() int64 { return p.exchanges.Load() }

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client) || !p.track(server) {
			_ = client.Close()
			_ = server.Close()
			return
		}
		// turn is true while the client has the floor: set when it sends,
		// cleared when the server answers.
		var turn atomic.Bool
		p.wg.Add(2)
		go p.pipe(server, client, func() {
			if !turn.Swap(true) {
				p.exchanges.Add(1)
			}
		})
		go p.pipe(client, server, func() { turn.Store(false) })
	}
}

// pipe copies src to dst, calling onData for every chunk read before it is
// (possibly delayed and) written. Delayed chunks keep their order and their
// spacing: each is due delay after it was read.
func (p *Proxy) pipe(dst, src net.Conn, onData func()) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	if p.delay <= 0 {
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				onData()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	type chunk struct {
		due  time.Time
		data []byte
	}
	queue := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range queue {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				for range queue {
				}
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			onData()
			queue <- chunk{due: time.Now().Add(p.delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			break
		}
	}
	close(queue)
	<-done
}
