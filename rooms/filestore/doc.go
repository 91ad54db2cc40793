// Package filestore is the embedded default rooms.Store that survives a
// restart: the in-memory store (rooms/memstore) plus a journal in a
// directory of its own (dataDir/state). Production with several nodes uses
// rooms/redisstore instead.
//
// # What is kept
//
// Sessions, invitations (with revocations), accounts (with failed-login
// counters and lockouts), the event log of every session, and participants
// with their joins, leaves and media/lobby state. A call returns only once
// its change is on disk (fsync), so a crash or power loss after a call
// returns loses nothing that call did. Concurrent callers share one fsync
// (group commit).
//
// # What is not kept
//
// Heartbeats. A participant's liveness after a restart is the one its last
// join (UpsertParticipant) gave it, so participants that were in a call when
// the server stopped drop out of ListLive once that TTL has run out, as they
// would after a node crash with Redis; they rejoin when their pages
// reconnect. LastSeen is as of the participant's last journaled change.
//
// # Files
//
//	LOCK                  flock held for the life of the Store (holds the pid)
//	snapshot.json         the whole state, covering journals before its "journal" generation
//	journal-<gen>.jsonl   one JSON record per line, appended and fsync'ed
//	journal-<gen>.jsonl.torn-<offset>   bytes of an interrupted last write, kept for inspection
//
// Each Open starts a new journal generation and never appends to a file it
// replayed. Compaction (when the journals outgrow max(8 MiB, the snapshot))
// starts a new generation, writes the snapshot to a temporary file, fsyncs
// and renames it, and only then deletes the journals it covers, so a crash
// at any point leaves a snapshot plus journals that replay to the same
// state.
//
// # Damage
//
// A last line that does not decode, with nothing decodable after it, is an
// interrupted write: Open logs a warning, keeps the bytes beside the journal
// and carries on with every line before it. An undecodable line followed by
// good ones, a gap in record numbers, or an event log with a hole is not
// something a crash produces: Open refuses with ErrCorrupt and names the file
// and line, rather than start on a silently shortened history.
//
// # When the disk fails
//
// If a journal write or fsync fails, the store stops accepting changes:
// that call and every later change return rooms.ErrUnavailable, Healthy
// reports false, and reads keep working. The failed change may still be
// visible in memory (it was applied before the write), but it was never
// confirmed to its caller.
package filestore
