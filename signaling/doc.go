// Package signaling serves ducha's signaling protocol (PROTOCOL.md, version
// 1) over websockets: join with a token, SDP and ICE exchange with the SFU,
// room events.
//
// Each connection has two goroutines. The reader owns the protocol state
// (joined or not, the media session) and makes every call into the
// Conference and Session; the writer is the only one writing data frames.
// The SFU reaches the client through an sfu.Notifier that queues typed
// messages on a bounded channel and never blocks: a client too slow to
// drain it is disconnected rather than allowed to hold memory or stall the
// SFU. Errors are mapped to protocol codes and close codes here, at the
// edge, and nowhere else.
package signaling
