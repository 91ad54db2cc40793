package redisstore

import (
	"sync"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// cache is the last known state: every record this node read or wrote. It
// answers reads while Redis is unreachable and is the base that writes made
// during an outage apply to. The event log is not cached (it can be long and
// an incomplete log is worse than an error), so ListEvents fails while
// Redis is down.
type cache struct {
	mu           sync.Mutex
	sessions     map[string]rooms.Session
	invitations  map[string]rooms.Invitation
	accounts     map[string]rooms.Account // by username
	accountIDs   map[string]string
	participants map[string]map[string]cachedParticipant // session -> participant
}

type cachedParticipant struct {
	p       rooms.Participant
	expires time.Time // zero: unknown, treated as expired
}

func newCache() *cache {
	return &cache{
		sessions:     make(map[string]rooms.Session),
		invitations:  make(map[string]rooms.Invitation),
		accounts:     make(map[string]rooms.Account),
		accountIDs:   make(map[string]string),
		participants: make(map[string]map[string]cachedParticipant),
	}
}

// putSession stores s unless the cache holds a newer version; ended
// sessions lose their cached participants, which nobody needs live any more.
func (c *cache) putSession(s rooms.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.sessions[s.ID]; ok && cur.Version > s.Version {
		return
	}
	c.sessions[s.ID] = s.Clone()
	if s.Status.Final() {
		delete(c.participants, s.ID)
	}
}

func (c *cache) session(id string) (rooms.Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[id]
	return s.Clone(), ok
}

func (c *cache) allSessions() []rooms.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]rooms.Session, 0, len(c.sessions))
	for _, s := range c.sessions {
		out = append(out, s.Clone())
	}
	return out
}

func (c *cache) putInvitation(inv rooms.Invitation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Revocation is the only change and it is final: never un-revoke.
	if cur, ok := c.invitations[inv.ID]; ok && cur.Revoked() && !inv.Revoked() {
		return
	}
	c.invitations[inv.ID] = inv
}

func (c *cache) invitation(id string) (rooms.Invitation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inv, ok := c.invitations[id]
	return inv, ok
}

func (c *cache) sessionInvitations(sessionID string) []rooms.Invitation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rooms.Invitation
	for _, inv := range c.invitations {
		if inv.SessionID == sessionID {
			out = append(out, inv)
		}
	}
	return out
}

func (c *cache) allInvitations() []rooms.Invitation {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]rooms.Invitation, 0, len(c.invitations))
	for _, inv := range c.invitations {
		out = append(out, inv)
	}
	return out
}

func (c *cache) putAccount(a rooms.Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.accounts[a.Username]; ok && cur.Version > a.Version {
		return
	}
	c.accounts[a.Username] = a
	c.accountIDs[a.ID] = a.Username
}

func (c *cache) account(username string) (rooms.Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.accounts[username]
	return a, ok
}

func (c *cache) accountByID(id string) (rooms.Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.accounts[c.accountIDs[id]]
	return a, ok
}

func (c *cache) allAccounts() []rooms.Account {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]rooms.Account, 0, len(c.accounts))
	for _, a := range c.accounts {
		out = append(out, a)
	}
	return out
}

// putParticipant stores p; a zero expires keeps the known expiry.
func (c *cache) putParticipant(p rooms.Participant, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.participants[p.SessionID]
	if ps == nil {
		ps = make(map[string]cachedParticipant)
		c.participants[p.SessionID] = ps
	}
	cur, ok := ps[p.ID]
	if ok && cur.p.Version > p.Version {
		return
	}
	if expires.IsZero() {
		expires = cur.expires
	}
	ps[p.ID] = cachedParticipant{p: p, expires: expires}
}

// touch records a heartbeat. It reports false when the participant is not
// known or has left.
func (c *cache) touch(sessionID, id string, now, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.participants[sessionID][id]
	if !ok || !cp.p.LeftAt.IsZero() {
		return false
	}
	cp.p.LastSeen, cp.expires = now, expires
	c.participants[sessionID][id] = cp
	return true
}

func (c *cache) participant(sessionID, id string) (rooms.Participant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.participants[sessionID][id]
	return cp.p, ok
}

func (c *cache) sessionParticipants(sessionID string, liveAt time.Time) []rooms.Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rooms.Participant
	for _, cp := range c.participants[sessionID] {
		if !liveAt.IsZero() && (!cp.p.LeftAt.IsZero() || !liveAt.Before(cp.expires)) {
			continue
		}
		out = append(out, cp.p)
	}
	rooms.SortParticipants(out)
	return out
}
