package signaling

import (
	"encoding/json"
	"time"

	"github.com/gorilla/websocket"
)

// closeRequest says how a connection ends. The first request wins.
type closeRequest struct {
	code   int     // websocket close code; 0: the peer is gone, send nothing
	reason string  // close frame reason (short, for logs and debugging)
	final  *outMsg // sent just before the close frame (the error or `closed`)
	drain  bool    // write what is already queued before final
}

// requestClose asks the writer to end the connection. It never blocks and
// reports whether this request was the first.
func (c *conn) requestClose(req closeRequest) bool {
	first := false
	c.closeOnce.Do(func() {
		c.closeMsg = req
		close(c.closeReq)
		first = true
	})
	return first
}

func (c *conn) closing() bool {
	select {
	case <-c.closeReq:
		return true
	default:
		return false
	}
}

// enqueue queues m for the writer without ever blocking: it is called from
// SFU goroutines through the Notifier.
func (c *conn) enqueue(m outMsg) {
	if c.closing() {
		return
	}
	select {
	case c.out <- m:
	default:
		c.slowConsumer()
	}
}

// slowConsumer closes a connection whose client does not read fast enough
// to keep its queue below the limit. Holding more for it would let one bad
// network grow the server's memory without bound.
func (c *conn) slowConsumer() {
	if c.requestClose(closeRequest{code: websocket.ClosePolicyViolation, reason: "slow consumer"}) {
		c.h.st.slowConsumers.Add(1)
		c.lg().Warn("closing slow consumer", "queue", c.lim.OutboundQueue)
	}
}

// writeLoop is the only goroutine that writes data frames.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	ping := time.NewTicker(c.lim.PingInterval)
	defer ping.Stop()
	// The join deadline lives here rather than in a timer goroutine so that
	// nothing of the connection outlives the writer.
	joinDeadline := time.NewTimer(c.lim.JoinTimeout)
	defer joinDeadline.Stop()
	for {
		// A requested close goes before anything still queued (the request
		// itself says whether to drain).
		select {
		case <-c.closeReq:
			c.writeClose()
			return
		default:
		}
		select {
		case <-c.closeReq:
			c.writeClose()
			return
		case <-c.readerDone:
			return
		case m := <-c.out:
			if err := c.write(m); err != nil {
				c.writeFailed(err)
				return
			}
		case <-joinDeadline.C:
			c.onJoinTimeout()
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.lim.WriteTimeout)); err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
}

func (c *conn) write(m outMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		// Only a programming error gets here; drop the message rather than
		// the connection.
		c.lg().Error("marshal outbound message", "type", m.Type, "err", err)
		return nil
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.lim.WriteTimeout)); err != nil {
		return err
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	c.h.st.messagesOut.Add(1)
	return nil
}

// writeFailed ends a connection whose socket no longer takes writes;
// closing it wakes the reader, which does the cleanup.
func (c *conn) writeFailed(err error) {
	c.requestClose(closeRequest{})
	c.lg().Debug("write failed", "err", err)
	c.ws.Close()
}

// writeClose sends what the close request asks for, then the close frame,
// and gives the reader CloseGrace to collect the peer's close frame: closing
// the socket with unread data would reset it and could destroy the frames
// just sent before the client reads them.
func (c *conn) writeClose() {
	req := c.closeMsg
	if req.code == 0 {
		return
	}
	if req.drain {
		for n := len(c.out); n > 0; n-- {
			if err := c.write(<-c.out); err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
	if req.final != nil {
		if err := c.write(*req.final); err != nil {
			c.writeFailed(err)
			return
		}
	}
	reason := req.reason
	if len(reason) > 120 {
		reason = reason[:120]
	}
	err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(req.code, reason),
		time.Now().Add(c.lim.WriteTimeout))
	if err != nil {
		c.writeFailed(err)
		return
	}
	c.dlMu.Lock()
	c.closeSent = true
	c.ws.SetReadDeadline(time.Now().Add(c.lim.CloseGrace))
	c.dlMu.Unlock()
}

// extendReadDeadline is called for every frame received: a connection is
// idle only when nothing at all arrives. Once our close frame is out, the
// short grace deadline stands.
func (c *conn) extendReadDeadline() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	if !c.closeSent {
		c.ws.SetReadDeadline(time.Now().Add(c.lim.IdleTimeout))
	}
}
