// Package replay is the auditors' side of evidence recordings: a searchable
// index of archived recordings, the facts a replay page needs (participants
// and their segments on the session's server-clock timeline, the event log,
// gaps, retention and legal hold), verification on demand, segments read
// from the archive for HTTP Range requests, evidence packages (zip) that can
// be checked without ducha, and the access log.
//
// The index is a cache of the archive: every entry is built from a signed
// manifest (sessions/<id>/manifest.json), optionally enriched from the
// session store (unit names, the supervisor's display name), and Rebuild
// reconstructs all of it from the archive's manifests alone. It is kept
// current by WatchSeals (the uploader's archive, wrapped: an entry appears as
// soon as a manifest's signature is archived) and by Run's periodic scan.
//
// The access log lives in the archive itself, one small object per access
// under access-log/YYYY/MM/DD/, written with the archive's retention, so
// nobody (auditors and administrators included) can change or delete an
// entry before the retention date; nothing in ducha offers a way to write
// it except LogAccess, which the HTTP API calls after its permission checks.
package replay
