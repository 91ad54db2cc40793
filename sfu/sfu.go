package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/arrival"
	"github.com/ducha-dev/ducha/internal/udpbatch"
)

// Config is the SFU's configuration. The zero value of each field means its
// default.
type Config struct {
	// ListenIP is the address the media sockets bind to (default 0.0.0.0).
	ListenIP string
	// UDPPort is the one UDP port all media uses (ICE UDP mux); 0 picks a free port.
	UDPPort int
	// TCPPort is the ICE-TCP port; 0 picks a free port, -1 disables ICE-TCP.
	TCPPort int
	// PublicIPs are announced as host candidates instead of the local
	// addresses (the server's address as county offices see it).
	PublicIPs []string
	// IncludeLoopback offers 127.0.0.1 candidates (tests, single-box demos).
	IncludeLoopback bool
	// VideoCacheSize and AudioCacheSize are packet cache slots per track.
	VideoCacheSize int
	AudioCacheSize int
	// QueueLen is the fan-out queue length per writer.
	QueueLen int
	// SubscribersPerWriter is how many subscribers one fan-out goroutine serves.
	SubscribersPerWriter int
	// MaxWritersPerTrack caps fan-out goroutines per published track.
	MaxWritersPerTrack int
	// InlineFanout is the largest group of subscribers the reader writes
	// itself instead of waking a fan-out goroutine (default 4; -1: never).
	InlineFanout int
	// KeyframeMinSpacing throttles keyframe requests to a publisher.
	KeyframeMinSpacing time.Duration
	// DTLSHandshakeTimeout ends a DTLS handshake that has not completed
	// (default 30 s): Pion waits forever by default, so a peer that
	// connected ICE and then never finished its handshake held its
	// participant, silently, until the signaling closed. It now fails as
	// connection_failed, which is logged and told to the client.
	DTLSHandshakeTimeout time.Duration
	// Clock is injected by tests; default the system clock.
	Clock Clock
	// Observer, if set, is told of every published track (the recorder).
	Observer TrackObserver
	// MaxSpeakers is how many loudest speakers are announced, and in large
	// rooms forwarded (default 3).
	MaxSpeakers int
	// LargeRoom: with more participants than this, only the loudest
	// speakers' audio is forwarded to browsers (default 10). The recorder
	// always gets every track.
	LargeRoom int
	// SpeakerInterval is how often speakers are chosen (default 200 ms).
	SpeakerInterval time.Duration
	// AllocInterval is how often simulcast layers are chosen (default 500 ms).
	AllocInterval time.Duration
	// DirectSend writes every UDP packet with its own sendto. By default
	// (on Linux, IPv4 or dual-stack sockets) packets queue while the last
	// batch is written and leave together with one sendmmsg
	// (internal/udpbatch): no timer, so a quiet call adds no delay, and a
	// busy server spends a system call per batch instead of per packet
	// (about 8 µs a call here). DirectSend is for comparison runs.
	DirectSend bool
	// NoDTX stops asking senders for Opus discontinuous transmission. With
	// DTX (usedtx=1, the default) a silent microphone sends one packet every
	// 400 ms instead of fifty a second: most of a province-wide session's
	// 117 county microphones are silent, and every packet costs the SFU a
	// full receive path only to read its audio level. The recorder fills the
	// gaps with concealment frames, so recordings keep their timing; what is
	// lost is the room's exact background noise between words (comfort
	// noise instead). NoDTX is for a bureau that must keep it.
	NoDTX bool

	// TCPWriteBuffer is how many bytes may wait to be written to one
	// ICE-TCP connection before its packets are dropped (default 256 KiB,
	// about 1.4 s of a 1.5 Mbit/s layer; see New).
	TCPWriteBuffer int

	// tcpConnHook wraps each accepted ICE-TCP connection: tests stand a
	// stalled network in with it.
	tcpConnHook func(net.Conn) net.Conn
}

func (c *Config) setDefaults() {
	if c.ListenIP == "" {
		c.ListenIP = "0.0.0.0"
	}
	if c.VideoCacheSize == 0 {
		c.VideoCacheSize = 512
	}
	if c.AudioCacheSize == 0 {
		c.AudioCacheSize = 64
	}
	if c.QueueLen == 0 {
		c.QueueLen = 256
	}
	// Fan-out goroutines beyond the number of cores only add hand-offs:
	// each packet wakes every writer of its track. A province-wide session's
	// 117 subscribers of one layer are served by one writer per core.
	if c.SubscribersPerWriter == 0 {
		c.SubscribersPerWriter = 32
	}
	if c.MaxWritersPerTrack == 0 {
		c.MaxWritersPerTrack = max(2, runtime.GOMAXPROCS(0))
	}
	if c.InlineFanout == 0 {
		c.InlineFanout = 4
	}
	if c.KeyframeMinSpacing == 0 {
		c.KeyframeMinSpacing = 100 * time.Millisecond
	}
	if c.TCPWriteBuffer == 0 {
		c.TCPWriteBuffer = 256 << 10
	}
	if c.DTLSHandshakeTimeout == 0 {
		c.DTLSHandshakeTimeout = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.MaxSpeakers == 0 {
		c.MaxSpeakers = 3
	}
	if c.LargeRoom == 0 {
		c.LargeRoom = 10
	}
	if c.SpeakerInterval == 0 {
		c.SpeakerInterval = 200 * time.Millisecond
	}
	if c.AllocInterval == 0 {
		c.AllocInterval = 500 * time.Millisecond
	}
}

// hookedListener applies Config.tcpConnHook to accepted connections.
type hookedListener struct {
	net.Listener
	hook func(net.Conn) net.Conn
}

func (l hookedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.hook(c), nil
}

// SFU owns the media sockets and the rooms of one node.
type SFU struct {
	cfg   Config
	log   *slog.Logger
	api   *webrtc.API
	udp   net.PacketConn
	batch *udpbatch.Conn // nil with DirectSend
	tcp   net.Listener
	umux  ice.UDPMux
	// socket times media packets as they leave the socket (the start of
	// the forwarding delay) for those that take Pion's receive path.
	socket *socketTimes
	// ingress takes publishers' media off the socket (ingress.go).
	ingress *ingressTable
	// corked: the reader holds the send batch across the burst of
	// datagrams it is handling (takeDatagram); the mux's reader alone
	// uses it.
	corked bool
	// behind: the reader's burst had readerBehind datagrams or more left
	// when it took one; small fan-outs go to their writers meanwhile.
	behind atomic.Bool
	tmux   ice.TCPMux
	ctr    counters

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool
}

// New opens the media ports and builds the Pion API.
func New(cfg Config, log *slog.Logger) (*SFU, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	s := &SFU{cfg: cfg, log: log, rooms: map[string]*Room{}}

	network := "udp"
	if ip := net.ParseIP(cfg.ListenIP); ip != nil && ip.To4() != nil {
		network = "udp4"
	}
	pc, err := net.ListenPacket(network, net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.UDPPort)))
	if err != nil {
		return nil, fmt.Errorf("sfu: media UDP port: %w", err)
	}
	udp := pc.(*net.UDPConn)
	// Media arrives and leaves in bursts (a keyframe is dozens of packets).
	_ = udp.SetReadBuffer(4 << 20)
	_ = udp.SetWriteBuffer(4 << 20)
	var muxConn net.PacketConn = udp
	if !cfg.DirectSend {
		b, err := udpbatch.New(udp, udpbatch.WithWaited(s.ctr.sendWait.observeN))
		if err != nil {
			_ = udp.Close()
			return nil, fmt.Errorf("sfu: media UDP port: %w", err)
		}
		s.batch = b
		muxConn = b
	}
	s.udp = muxConn
	s.socket = newSocketTimes()
	s.ingress = newIngressTable()
	muxConn = arrival.WrapTaking(muxConn, cfg.Clock.Now, s.takeDatagram)
	// Net lets the mux list the host's addresses when bound to 0.0.0.0.
	stdNet, err := stdnet.NewNet()
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("sfu: network interfaces: %w", err)
	}
	s.umux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: muxConn, Net: stdNet})

	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(s.umux)
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPPort >= 0 {
		tcp, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			_ = udp.Close()
			return nil, fmt.Errorf("sfu: ICE-TCP port: %w", err)
		}
		s.tcp = tcp
		var ln net.Listener = tcp
		if cfg.tcpConnHook != nil {
			ln = hookedListener{tcp, cfg.tcpConnHook}
		}
		// Pion queues what is written to each ICE-TCP connection and writes
		// it from the connection's own goroutine, dropping packets once the
		// queue is full, so a county whose TCP path stops draining never
		// blocks a fan-out writer. webrtc.NewICETCPMux allows 4 MB a
		// connection: at 1.5 Mbit/s that is over 20 s of video waiting
		// behind a slow path before anything is dropped. TCPWriteBuffer
		// bounds the wait; after that packets drop as they would over UDP,
		// and NACKs, keyframe requests and the bandwidth estimate take over.
		s.tmux = ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: ln, ReadBufferSize: 64,
			WriteBufferSize: cfg.TCPWriteBuffer})
		se.SetICETCPMux(s.tmux)
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// When the server offers (to a county that only receives, and for every
	// later change) its ICE agent is the controlling one, and Pion's waits
	// before nominating a pair whose remote candidate is server-reflexive
	// (500 ms) or peer-reflexive (1 s), in case a better pair turns up.
	// Behind NAT that is every county: its private addresses are of no use,
	// and the server learns its address from its checks; a browser that
	// gathers before the camera is allowed hides its addresses behind mDNS
	// names, which we do not resolve, with the same result. Every pair ends
	// at the server's one address, so the wait only delays the first frame.
	// Relayed pairs keep Pion's wait (2 s): nominating one at once would
	// carry a whole call through TURN that a direct pair could have carried.
	se.SetSrflxAcceptanceMinWait(0)
	se.SetPrflxAcceptanceMinWait(0)
	// The DTLS server picks the SRTP profile: answering as server lets us
	// choose AES-GCM, about 7x cheaper per packet than AES-CM+HMAC-SHA1.
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		s.closeSockets()
		return nil, err
	}
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	// No HelloVerifyRequest round trip: its cookie proves that a client
	// owns its source address, which ICE has proved already (Pion accepts
	// DTLS only from remote candidates, and a peer-reflexive one only after
	// a check that carried our ICE password), and browsers' own DTLS servers
	// skip it too. One round trip less on every join (about 35 ms in a load
	// run with 40 ms of added downlink delay).
	se.SetDTLSInsecureSkipHelloVerify(true)
	hs := cfg.DTLSHandshakeTimeout
	se.SetDTLSConnectContextMaker(func() (context.Context, func()) {
		return context.WithTimeout(context.Background(), hs)
	})

	me, ir, err := buildMedia()
	if err != nil {
		s.closeSockets()
		return nil, err
	}
	s.api = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	log.Info("sfu listening", "udp", udp.LocalAddr().String(), "tcp", s.TCPAddr(), "public_ips", cfg.PublicIPs)
	return s, nil
}

// Bandwidth estimate bounds (bits per second). The start is what a
// subscriber can be assumed to take before feedback says otherwise: one
// full layer and change.
const (
	initialEstimate = 2_000_000
	minEstimate     = 100_000
	maxEstimate     = 200_000_000
)

// buildMedia registers the codecs and RTP machinery. No RTX: browsers then
// retransmit on the original SSRC, which our cache stores and forwards.
func buildMedia() (*webrtc.MediaEngine, *interceptor.Registry, error) {
	me := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{
		{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
		{Type: webrtc.TypeRTCPFBTransportCC},
	}
	codecs := []struct {
		c    webrtc.RTPCodecParameters
		kind webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
			ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
			ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9,
			ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFB}, PayloadType: 98}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: videoFB}, PayloadType: 102}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
			RTCPFeedback: videoFB}, PayloadType: 104}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f",
			RTCPFeedback: videoFB}, PayloadType: 106}, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c.c, c.kind); err != nil {
			return nil, nil, fmt.Errorf("sfu: register %s: %w", c.c.MimeType, err)
		}
	}
	exts := []struct {
		uri   string
		kinds []webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
		{sdp.SDESRTPStreamIDURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
		{sdp.SDESRepairRTPStreamIDURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
		{sdp.TransportCCURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
		{sdp.AudioLevelURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}},
	}
	for _, e := range exts {
		for _, k := range e.kinds {
			if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, k); err != nil {
				return nil, nil, fmt.Errorf("sfu: header extension %s: %w", e.uri, err)
			}
		}
	}

	// No interceptors. Publisher side: the NACKs, receiver reports and
	// transport-wide feedback publishers get are the SFU's own (inbound.go),
	// counted where every packet ends, whether it came through Pion or
	// through the own ingress (ingress.go). Subscriber side: NACKs are
	// answered by downTrack from the shared cache; transport-wide sequence
	// numbers are stamped, and their feedback read, by the SFU's own
	// estimator (internal/bwe); sender reports come from the rtpOuts' own
	// counts (senderreport.go), because the own SRTP egress (egress.go)
	// bypasses the interceptor chain.
	return me, &interceptor.Registry{}, nil
}

// UDPAddr is the media UDP address.
func (s *SFU) UDPAddr() net.Addr { return s.udp.LocalAddr() }

// TCPAddr is the ICE-TCP address, or "" when disabled.
func (s *SFU) TCPAddr() string {
	if s.tcp == nil {
		return ""
	}
	return s.tcp.Addr().String()
}

// Stats returns the counters and room sizes.
func (s *SFU) Stats() Stats {
	st := s.ctr.snapshot()
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	st.Rooms = len(rooms)
	for _, r := range rooms {
		p, t := r.size()
		st.Participants += p
		st.Tracks += t
		st.SimulcastLayers += r.simulcastLayers()
	}
	if s.batch != nil {
		b := s.batch.Stats()
		st.UDPBatched, st.UDPBatches, st.UDPSendErrors = b.Packets, b.Batches, b.Errors
	}
	return st
}

// Join adds a participant to a room, creating the room on first use.
func (s *SFU) Join(roomID string, info ParticipantInfo, n Notifier) (*Participant, JoinResult, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, JoinResult{}, ErrClosed
		}
		r, ok := s.rooms[roomID]
		if !ok {
			r = newRoom(s, roomID)
			s.rooms[roomID] = r
		}
		s.mu.Unlock()
		p, res, err := r.join(info, n)
		if errors.Is(err, errRoomGone) {
			continue // emptied and dropped meanwhile (the replaced participant was its last member)
		}
		return p, res, err
	}
}

// Room returns a room by id, or nil.
func (s *SFU) Room(id string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[id]
}

// dropRoomIfEmpty forgets an empty room.
func (s *SFU) dropRoomIfEmpty(r *Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.rooms[r.id] == r && len(r.parts) == 0 {
		delete(s.rooms, r.id)
		r.dead = true
		if r.spkTimer != nil {
			r.spkTimer.Stop()
		}
		if r.allocTimer != nil {
			r.allocTimer.Stop()
		}
		if r.reportTimer != nil {
			r.reportTimer.Stop()
		}
	}
}

// Close ends every session and closes the media ports.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.closeAll("server_shutdown")
	}
	return s.closeSockets()
}

func (s *SFU) closeSockets() error {
	var errs []error
	if s.umux != nil {
		errs = append(errs, s.umux.Close())
	}
	if s.tmux != nil {
		errs = append(errs, s.tmux.Close())
	}
	if s.udp != nil {
		if err := s.udp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.tcp != nil {
		if err := s.tcp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RoomTracks lists the tracks published in a room (for the recorder when
// recording is switched on mid-session).
func (s *SFU) RoomTracks(room string) []*UpTrack {
	r := s.Room(room)
	if r == nil {
		return nil
	}
	return r.Tracks()
}
