// Package httpapi serves the console's JSON API under /api/v1: sign-in with
// a signed stateless cookie and CSRF token, supervision sessions, county
// invitations (links and QR codes), the supervisor's join link, live
// participants and moderation (through a Moderator the live controller
// implements), the event log, attendance, the bureau overview, and console
// accounts. docs/api.md documents every endpoint.
//
// Errors are mapped to HTTP here and nowhere else: handlers return errors
// (sentinels of rooms, accounts and this package, or *Error), and one
// function turns them into {"error": {"code", "message"}} with a stable code.
// Messages are Simplified Chinese unless the request prefers English
// (Accept-Language).
//
// RunUserCLI is the `ducha user` command line, so the first administrator
// can be created before anyone can sign in.
package httpapi
