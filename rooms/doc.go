// Package rooms is the data layer of supervision sessions (督查会话): the
// session model and its status machine, participants kept alive by
// heartbeats, the append-only event log that goes into the evidence
// manifest, invitations for county units, accounts, and the attendance report
// computed from the event log.
//
// Everything stateful goes through Store, which has an in-memory
// implementation (rooms/memstore, the embedded default) and a Redis one
// (rooms/redisstore, production with several nodes). rooms/storetest holds
// the contract suite both must pass. Password hashing and lockout live in
// rooms/accounts.
//
// Conventions the rest of ducha relies on:
//   - Times are stored as given; stores never round them, so an event keeps
//     the time it happened even if it is written later.
//   - Participant events (join, leave, remove, admit, lobby_enter, mute...)
//     carry the participant ID in Event.Subject and the unit code in
//     Event.Data[DataUnit]; Attendance depends on it.
//   - Update functions passed to Store.Update* may run more than once
//     (optimistic concurrency retries, replay after a Redis outage): they must
//     be deterministic and free of side effects.
package rooms
