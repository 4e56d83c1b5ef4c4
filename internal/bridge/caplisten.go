package bridge

import (
	"net"
	"sync"
	"sync/atomic"
)

// capListener holds at most cap(slots) accepted connections at a time. A connection beyond
// that is accepted and closed at once: it costs no file descriptor, no goroutine and no
// buffer past that, and does not wait in the kernel's backlog either. A slot is freed when
// its connection is closed (by the server, after a timeout or when the peer leaves).
type capListener struct {
	net.Listener
	slots   chan struct{}
	refused atomic.Int64 // connections closed at once because every slot was taken
}

func newCapListener(ln net.Listener, max int) *capListener {
	return &capListener{Listener: ln, slots: make(chan struct{}, max)}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &capConn{Conn: c, l: l}, nil
		default:
			l.refused.Add(1)
			c.Close()
		}
	}
}

// open is the number of connections holding a slot.
func (l *capListener) open() int { return len(l.slots) }

type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.slots })
	return err
}
