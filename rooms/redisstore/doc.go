// Package redisstore is the Redis rooms.Store, for production and for
// several nodes sharing state (github.com/redis/go-redis/v9).
//
// # Keys
//
// Every key starts with Options.Prefix (e.g. "ducha:"). Keys of one session
// carry the session ID as a {hash tag}.
//
//	session:{id}                     session record
//	session:{id}:invitations         set of invitation IDs
//	session:{id}:participant:<pid>   participant record (no TTL)
//	session:{id}:participants        set of participant IDs ever joined
//	session:{id}:alive:<pid>         liveness marker, TTL = heartbeat TTL
//	session:{id}:live                sorted set pid -> last seen (unix ms)
//	session:{id}:left                set of participants who left
//	session:{id}:events              stream, entry ID 0-<Seq>, field e = event JSON
//	session:{id}:event_ids           hash event ID -> Seq (exactly-once appends)
//	session:{id}:event_seq           counter behind Seq
//	sessions:by_start                sorted set id -> scheduled start (unix ms)
//	sessions:by_supervisor:<acct>    same, per supervisor
//	sessions:by_status:<status>      set of ids
//	invitation:<id>                  invitation record
//	account:<username>               account record
//	account_id:<id>                  username
//	accounts                         set of usernames
//	epoch                            random value; its loss reveals a wiped Redis
//
// Records are JSON envelopes {"w": write ID, "d": value}. Updates are
// optimistic (WATCH, GET, MULTI, SET + indexes, EXEC, retried on conflict),
// so two nodes updating one session never lose a change. Event appends and
// heartbeats are Lua scripts.
//
// # When Redis is unreachable
//
// A write that fails because Redis cannot be reached (or anything written
// while earlier writes are still waiting) goes to an in-memory FIFO queue
// (Options.QueueLimit, default 100000). It is applied at once to a local
// cache of the last known state, so the node keeps working: reads of
// sessions, participants, invitations and accounts this node has seen are
// answered from the cache; reads it cannot answer (session lists, the event
// log, records never seen) return rooms.ErrUnavailable. Heartbeats only
// refresh the cache. A full queue refuses the write with rooms.ErrQueueFull:
// nothing is dropped silently.
//
// One goroutine retries with exponential backoff (Options.MinBackoff to
// MaxBackoff, on the injected clock), and when Redis answers replays the
// queue in order. Replay is idempotent, because the reply to a write can be
// lost after Redis applied it: events are deduplicated by their ID, records
// by the write ID in the envelope. A queued update whose session was changed
// meanwhile by another node is re-applied on top of that change, as a direct
// update would have been; if it no longer applies (say the other node ended
// the session) it is logged at error level and counted in Stats.Failed.
// Events appended while down keep their time and order; their Seq is
// assigned when they reach Redis (AppendEvent returns Seq 0 for them).
// Healthy, Stats and Options.OnHealth report the state for logs and metrics.
//
// # Redis must persist
//
// The event log is evidence, so Redis must keep its data across restarts:
// run it with appendonly yes (appendfsync always, or everysec accepting the
// loss of up to one second on a Redis crash). A Redis that comes back empty
// is detected by the missing epoch key: the store logs it at error level,
// writes back the sessions, invitations and accounts it has cached and then
// its queue, but events that had already reached the lost Redis are gone.
// The detection only happens after an outage this store noticed.
package redisstore
