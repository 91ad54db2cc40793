// Package client is a Go client of the ducha signaling protocol with a Pion
// PeerConnection behind it: what a browser does, for integration tests and
// the load generator. It is the polite side of perfect negotiation, like
// the web client.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
)

// ErrServer is wrapped around `error` messages from the server.
var ErrServer = errors.New("client: server error")

// ServerError is an `error` message.
type ServerError struct {
	Code, Message, Ref string
}

func (e *ServerError) Error() string { return fmt.Sprintf("server error %s: %s", e.Code, e.Message) }

// Unwrap makes errors.Is(err, ErrServer) true.
func (e *ServerError) Unwrap() error { return ErrServer }

// Config says where to connect and how the PeerConnection is built.
type Config struct {
	URL    string // ws://host:port/ws
	Room   string
	Token  string
	Origin string // Origin header; empty sends none
	// API builds the PeerConnection; nil uses NewAPI(false).
	API *webrtc.API
	// OnTrack is called on Pion's goroutine for each received track with
	// what the server said about it (zero TrackInfo if unknown).
	OnTrack func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver, info sfu.TrackInfo)
	// OnMessage sees every server message after the client handled it.
	OnMessage func(typ string, data json.RawMessage)
	Logger    *slog.Logger
	// HideCandidates keeps the client's ICE candidates from the server, as
	// for a participant behind NAT whose private addresses are of no use:
	// the server learns its address from its connectivity checks.
	HideCandidates bool
}

// BrowserConfiguration is the PeerConnection configuration a browser
// has. Pion offers RTP header extension encryption (cryptex, RFC 9335) by
// default; Chromium does not (156, checked: its offers carry no
// a=cryptex), so a client that stands in for a browser must not either,
// or the server encrypts every forwarded packet's extensions for it as it
// never does for a browser.
func BrowserConfiguration() webrtc.Configuration {
	return webrtc.Configuration{RTPHeaderEncryptionPolicy: webrtc.RTPHeaderEncryptionPolicyDisable}
}

// NewAPI returns a Pion API configured like a browser: default codecs,
// NACK, RTCP reports, TWCC, the sdes:mid / rtp-stream-id header
// extensions simulcast needs and the audio level (RFC 6464) the server
// picks speakers by. includeLoopback offers 127.0.0.1 candidates.
func NewAPI(includeLoopback bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	if err := RegisterAudioLevel(me); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(includeLoopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

// Client is one participant.
type Client struct {
	cfg Config
	log *slog.Logger
	ws  *websocket.Conn
	pc  *webrtc.PeerConnection

	wmu    sync.Mutex // websocket writes
	nextID atomic.Int64
	ev     chan func() // negotiation work, run in order on one goroutine
	done   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
	// sdpPending counts received offers and answers not yet applied;
	// offeredGen counts changes of offered.
	sdpPending atomic.Int64
	offeredGen atomic.Uint64

	mu           sync.Mutex
	joined       signaling.Joined
	participants map[string]sfu.ParticipantState
	tracks       map[string]sfu.TrackInfo
	sources      map[string]string
	simulcasts   map[string]*Simulcast // by mid
	audios       []*AudioSender
	offered      []OfferedStream // from the remote description
	wantOffer    bool
	nextMid      int // event loop only
	candQueue    []webrtc.ICECandidateInit
	errs         []*ServerError
	closedReason string
	endErr       error
	lobby        bool
	session      *signaling.SessionState
	waiting      []signaling.Waiting
	chats        []signaling.ChatMessage
	speakers     []string
	admitted     chan struct{} // closed when a lobby participant is admitted
}

// Dial connects, joins and returns once `joined` arrived.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	api := cfg.API
	if api == nil {
		var err error
		if api, err = NewAPI(false); err != nil {
			return nil, err
		}
	}
	h := http.Header{}
	if cfg.Origin != "" {
		h.Set("Origin", cfg.Origin)
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, cfg.URL, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: dial %s: %w (HTTP %d)", cfg.URL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("client: dial %s: %w", cfg.URL, err)
	}
	pc, err := api.NewPeerConnection(BrowserConfiguration())
	if err != nil {
		_ = ws.Close()
		return nil, err
	}
	c := &Client{
		cfg: cfg, log: cfg.Logger, ws: ws, pc: pc, ev: make(chan func(), 1024), done: make(chan struct{}),
		participants: map[string]sfu.ParticipantState{}, tracks: map[string]sfu.TrackInfo{}, sources: map[string]string{},
		simulcasts: map[string]*Simulcast{}, admitted: make(chan struct{}),
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil && !cfg.HideCandidates {
			_ = c.send(signaling.TypeCandidate, cand.ToJSON())
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		// Drain RTCP like a browser: sender reports must reach Pion's
		// receiver-report interceptor for round-trip times to exist.
		go func() {
			for {
				if _, _, err := recv.ReadRTCP(); err != nil {
					return
				}
			}
		}()
		c.mu.Lock()
		info := c.tracks[tr.StreamID()]
		c.mu.Unlock()
		if c.cfg.OnTrack != nil {
			c.cfg.OnTrack(tr, recv, info)
		}
	})

	joined := make(chan error, 1)
	c.wg.Add(2)
	go c.readLoop(joined)
	go c.eventLoop()
	if err := c.send(signaling.TypeJoin, signaling.Join{Version: signaling.ProtocolVersion, Room: cfg.Room, Token: cfg.Token}); err != nil {
		c.Close()
		return nil, err
	}
	select {
	case err := <-joined:
		if err != nil {
			c.Close()
			return nil, err
		}
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

// PC is the PeerConnection (for getStats-like inspection and RTCP writes).
func (c *Client) PC() *webrtc.PeerConnection { return c.pc }

// Self is this participant as the server sees it.
func (c *Client) Self() sfu.ParticipantState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.participants[c.joined.Self.ID]
}

// Participants returns everyone in the room (self included).
func (c *Client) Participants() map[string]sfu.ParticipantState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]sfu.ParticipantState, len(c.participants))
	for k, v := range c.participants {
		out[k] = v
	}
	return out
}

// Tracks returns the published tracks the client knows of, by id.
func (c *Client) Tracks() map[string]sfu.TrackInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]sfu.TrackInfo, len(c.tracks))
	for k, v := range c.tracks {
		out[k] = v
	}
	return out
}

// Lobby reports whether the participant waits in the lobby.
func (c *Client) Lobby() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lobby
}

// Admitted is closed once a participant that waited in the lobby is in.
func (c *Client) Admitted() <-chan struct{} { return c.admitted }

// Session is the supervision session's state (nil for ad-hoc rooms).
func (c *Client) Session() *signaling.SessionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	s := *c.session
	return &s
}

// Waiting is the lobby as a supervisor sees it.
func (c *Client) Waiting() []signaling.Waiting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]signaling.Waiting(nil), c.waiting...)
}

// Speakers returns the participants the server last named as speaking.
func (c *Client) Speakers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.speakers...)
}

// Chats returns the chat messages received.
func (c *Client) Chats() []signaling.ChatMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]signaling.ChatMessage(nil), c.chats...)
}

// Chat sends a chat message.
func (c *Client) Chat(text string) error {
	return c.send(signaling.TypeChat, signaling.Chat{Text: text})
}

// Moderate sends a supervisor action.
func (c *Client) Moderate(action, target string) error {
	return c.send(signaling.TypeModerate, signaling.Moderate{Action: action, Target: target})
}

// Errors returns the server's error messages so far.
func (c *Client) Errors() []*ServerError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*ServerError(nil), c.errs...)
}

// ClosedReason is the reason of a `closed` message, if one came.
func (c *Client) ClosedReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedReason
}

// Done is closed when the connection ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Publish adds a local track and negotiates.
func (c *Client) Publish(track webrtc.TrackLocal, source string) (*webrtc.RTPSender, error) {
	return c.publish(track, source, nil)
}

// publish is Publish; added, if set, runs on the event loop once the
// sender exists and before the offer goes out, so whatever it registers
// is in place when the answer is applied (refreshSenders).
func (c *Client) publish(track webrtc.TrackLocal, source string, added func(*webrtc.RTPSender) error) (*webrtc.RTPSender, error) {
	type result struct {
		s   *webrtc.RTPSender
		err error
	}
	res := make(chan result, 1)
	if !c.post(func() {
		// A transceiver of our own with a mid of our own, not AddTrack: Pion
		// keeps the mid CreateOffer assigned when that offer is rolled back
		// (glare), and its numeric mids collide with those of the server's
		// next offer, which would then claim this transceiver for one of its
		// subscriptions and the track would never be published. Mids that
		// are not numbers are never chosen by Pion, on either side.
		tr, err := c.pc.AddTransceiverFromTrack(track,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		var s *webrtc.RTPSender
		if err == nil {
			err = tr.SetMid("c" + strconv.Itoa(c.nextMid))
			c.nextMid++
		}
		if err == nil {
			s = tr.Sender()
			if added != nil {
				err = added(s)
			}
		}
		if err == nil {
			c.sources[track.ID()] = source
			c.makeOffer()
		}
		res <- result{s, err}
	}) {
		return nil, errors.New("client: closed")
	}
	r := <-res
	return r.s, r.err
}

// PublishSimulcast publishes one video source as simulcast: one encoding
// per rid (smallest first by convention, DefaultRIDs), each its own
// TrackLocalStaticRTP, and negotiates. Write to the layers through
// Simulcast.Layers (a Synth with Layers does): they stamp the mid and rid
// header extensions the server needs, stop while the server's `layers`
// message leaves them out and resume when it lists them again.
func (c *Client) PublishSimulcast(codec webrtc.RTPCodecCapability, trackID, streamID, source string,
	rids []string) (*Simulcast, error) {
	type result struct {
		s   *Simulcast
		err error
	}
	res := make(chan result, 1)
	if !c.post(func() {
		// A mid of our own, as in Publish.
		mid := "c" + strconv.Itoa(c.nextMid)
		c.nextMid++ // even on failure: the transceiver may exist with it
		s, err := newSimulcast(c.pc, codec, trackID, streamID, mid, rids)
		if err == nil {
			c.sources[trackID] = source
			c.mu.Lock()
			c.simulcasts[mid] = s
			c.mu.Unlock()
			s.watchRTCP()
			c.makeOffer()
		}
		res <- result{s, err}
	}) {
		return nil, errors.New("client: closed")
	}
	r := <-res
	return r.s, r.err
}

// SetVideoSize tells the server how large we show a received video, in
// device pixels (0x0: not shown); the server picks the simulcast layer.
func (c *Client) SetVideoSize(track string, width, height int) error {
	return c.send(signaling.TypeVideoSize, signaling.VideoSize{Track: track, Width: width, Height: height})
}

// WaitPublished waits until the server has announced n tracks of ours and
// no negotiation is under way. A Pion client cannot roll back an offer (see
// onOffer), so clients that join together must publish one after another:
// each waits here before the next one offers.
func (c *Client) WaitPublished(ctx context.Context, n int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		self := c.Self().ID
		mine := 0
		for _, t := range c.Tracks() {
			if t.ParticipantID == self {
				mine++
			}
		}
		if mine >= n && c.pc.SignalingState() == webrtc.SignalingStateStable {
			return nil
		}
		select {
		case <-ctx.Done():
			// The states say where a stall sits: an offer never answered
			// (have-local-offer), or answered but no media reaching the
			// server (ICE not connected: it announces a track on its
			// first packet).
			return fmt.Errorf("client: %d of %d tracks published, signaling %s, ice %s, peer %s: %w", mine, n,
				c.pc.SignalingState(), c.pc.ICEConnectionState(), c.pc.ConnectionState(), ctx.Err())
		case <-c.done:
			return errors.New("client: closed")
		case <-tick.C:
		}
	}
}

// Mute tells the others our microphone or camera state.
func (c *Client) Mute(kind string, muted bool) error {
	return c.send(signaling.TypeMute, signaling.Mute{Kind: kind, Muted: muted})
}

// Send writes a raw message (tests use it to send what a browser would not).
func (c *Client) Send(typ string, data any) error { return c.send(typ, data) }

func (c *Client) send(typ string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	env := signaling.Envelope{Type: typ, ID: strconv.FormatInt(c.nextID.Add(1), 10), Data: raw}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteJSON(env)
}

func (c *Client) post(f func()) bool {
	select {
	case c.ev <- f:
		return true
	case <-c.done:
		return false
	}
}

func (c *Client) eventLoop() {
	defer c.wg.Done()
	for {
		select {
		case f := <-c.ev:
			f()
		case <-c.done:
			return
		}
	}
}

// Close leaves and releases everything. Safe to call more than once.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	_ = c.send(signaling.TypeLeave, signaling.Empty{})
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
	c.wg.Wait()
	_ = c.pc.Close()
}
