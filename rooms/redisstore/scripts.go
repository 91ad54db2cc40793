package redisstore

import "github.com/redis/go-redis/v9"

// appendEventScript appends an event exactly once. The event ID is looked up
// first, so replaying an append whose reply was lost returns the stored Seq
// instead of a second copy. Seq comes from a counter and is also the stream
// entry ID (0-Seq), so the stream order is the Seq order.
//
// KEYS: session, stream, event id hash, seq counter.
// ARGV: event id, payload, "1" to require the session record.
// Returns {seq, 1 if new}, or {-1, 0} when the session is missing.
const appendEventSrc = `
local seq = redis.call('HGET', KEYS[3], ARGV[1])
if seq then return {tonumber(seq), 0} end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
seq = redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[2], '0-' .. seq, 'e', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], seq)
return {seq, 1}
`

// heartbeatScript refreshes a participant's liveness unless it is unknown or
// has left.
//
// KEYS: participant record, left set, live marker, live sorted set.
// ARGV: participant id, ttl in ms, now in unix ms.
const heartbeatSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return 1
`

// listLiveScript returns the live participants of a session as flat triples
// {id, last seen ms, remaining ttl ms}, and removes from the sorted set those
// whose marker has expired. Doing both in one script keeps a heartbeat that
// arrives in between from being removed.
//
// KEYS: live sorted set. ARGV: live marker key prefix.
const listLiveSrc = `
local r = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #r, 2 do
  local ttl = redis.call('PTTL', ARGV[1] .. r[i])
  if ttl == -2 then
    redis.call('ZREM', KEYS[1], r[i])
  elseif ttl > 0 then
    table.insert(out, r[i])
    table.insert(out, r[i + 1])
    table.insert(out, ttl)
  end
end
return out
`

type scripts struct {
	appendEvent *redis.Script
	heartbeat   *redis.Script
	listLive    *redis.Script
}

func newScripts() scripts {
	return scripts{
		appendEvent: redis.NewScript(appendEventSrc),
		heartbeat:   redis.NewScript(heartbeatSrc),
		listLive:    redis.NewScript(listLiveSrc),
	}
}
