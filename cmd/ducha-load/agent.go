package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/netshape"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
)

// videoSpec is what a participant's camera sends.
type videoSpec struct {
	Kbps, FPS, Width, Height int
	Layers                   []layerSpec // simulcast; nil: one stream of Kbps at Width x Height
}

// agentSpec is one simulated participant.
type agentSpec struct {
	Room, Identity, Role string
	Video                *videoSpec // nil: no camera
	Audio                bool
	Down                 netshape.LinkShape
	PacketBytes          int
	Tiles                tilePlan // how large it shows received videos
	// Level is the RFC 6464 audio level its audio carries, -dBov: a
	// speech level for speakers, client.LevelSilence for the others.
	Level int
}

// speaks reports whether the participant's audio carries speech.
func (s agentSpec) speaks() bool { return s.Audio && s.Level < client.LevelSilence }

// tracks is how many tracks the participant publishes.
func (s agentSpec) tracks() int {
	n := 0
	if s.Video != nil {
		n++
	}
	if s.Audio {
		n++
	}
	return n
}

// agentEnv is what every agent shares.
type agentEnv struct {
	wsURL   string
	localIP string
	token   func(room, identity, role string) (string, error)
	now     func() time.Time
	log     *slog.Logger
	seed    uint64
	// pionLogs lets Pion's own warnings through (--log-level debug).
	pionLogs bool
	nat      bool // --nat
}

// agent is one simulated participant: its own UDP socket (shaped when its
// downlink is), a Pion PeerConnection configured like a browser, the
// signaling client, a Synth per published track and a recvTrack per
// received one.
type agent struct {
	spec      agentSpec
	env       agentEnv
	conn      net.PacketConn
	shaped    *netshape.Conn
	mux       ice.UDPMux
	c         *client.Client
	pc        atomic.Pointer[webrtc.PeerConnection] // set once Dial returned; read by track goroutines
	hist      delayHist                             // send to arrival at the socket
	stackHist delayHist                             // send to the read from Pion (after the client's receive chain)
	slotHist  delayHist                             // speaker slots only (their packets are in hist too)
	arrivals  *arrivals                             // socket arrival times, per received SSRC
	twcc      *twccFeedback                         // congestion feedback from socket arrival times
	source    uint32                                // written into our audio: slot receivers tell speakers apart by it
	synths    []*client.Synth
	audio     *client.AudioSender // the microphone, once published
	sims      []*client.Simulcast
	cancel    context.CancelFunc // stops the synths
	synthDone sync.WaitGroup

	// The background loops: video-size messages (sizeLoop) and TWCC
	// feedback.
	bgCancel  context.CancelFunc
	bgDone    sync.WaitGroup
	sizesSent atomic.Int64

	// joinStart: Dial began; joined: the server said joined; published:
	// the first Publish began.
	joinStart, joined, published time.Time
	// lastSignal: Unix ns of the last announcement or description from
	// the server (waitQuiet waits for a pause after it).
	lastSignal atomic.Int64

	mu     sync.Mutex
	tracks []*recvTrack
	infos  map[*recvTrack]sfu.TrackInfo
}

// newAPI builds what a browser has: default codecs, NACK generator (with
// a retry limit) and responder, RTCP reports, the transport-cc extension
// and feedback type (the feedback itself is the agent's own, timed at the
// socket: twccFeedback), and transport-wide sequence numbers on what it
// sends. Pion's stats
// interceptor is left out: it costs CPU per packet on this shared box and
// the load tool keeps its own counts.
// pionLoggers keeps Pion quiet: it logs to stderr by itself, and at
// shutdown every closed pipe is an ERROR line. --log-level debug lets its
// warnings through.
func pionLoggers(verbose bool) logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	if verbose {
		lf.DefaultLogLevel = logging.LogLevelWarn
	}
	return lf
}

func newAPI(mux ice.UDPMux, lf logging.LoggerFactory) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	// Browsers give up on a packet after 10 NACKs (libwebrtc's retry limit);
	// Pion's default never does, which on a congested link turns into a
	// storm of requests no real client sends.
	if err := webrtc.ConfigureNackWithOptions(me, ir,
		[]nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(10), nack.WithGeneratorLoggerFactory(lf)},
		// The responder keeps a copy of every packet sent for
		// retransmission; Pion's default of 1024 per stream made it the
		// largest share of the tool's memory in a 1+117 S2 run. 512 is
		// still seconds of every stream here (libwebrtc keeps about a
		// second, or three round trips).
		nack.ResponderSize(512), nack.WithResponderLoggerFactory(lf)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReportsWithOptions(ir, []report.ReceiverOption{report.WithReceiverLoggerFactory(lf)},
		report.WithSenderLoggerFactory(lf)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}
	if err := client.RegisterAudioLevel(me); err != nil {
		return nil, err
	}
	// What webrtc.ConfigureTWCCSender negotiates, without its
	// interceptor: that one would time arrivals after the receive chain.
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI},
			kind); err != nil {
			return nil, err
		}
	}
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEUDPMux(mux)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

// startAgent joins; publishing is a second step (publishAll), because the
// participants of one room must publish one at a time.
func startAgent(ctx context.Context, spec agentSpec, env agentEnv, index int) (a *agent, err error) {
	a = &agent{spec: spec, env: env, infos: map[*recvTrack]sfu.TrackInfo{}, source: uint32(index + 1)}
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(env.localIP, "0"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: socket: %v", ErrJoin, spec.Identity, err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(2 << 20) // keyframes arrive as bursts
	}
	a.conn = conn
	if spec.Down.Active() {
		a.shaped = netshape.New(conn, spec.Down, env.now, time.Sleep, env.seed+uint64(index))
		a.conn = a.shaped
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	lf := pionLoggers(env.pionLogs)
	a.arrivals = newArrivals()
	a.twcc = newTWCCFeedback(env.now())
	a.mux = webrtc.NewICEUDPMux(lf.NewLogger("ice"),
		wrapSocket(a.conn, &socketObserver{now: env.now, arrivals: a.arrivals, twcc: a.twcc}))
	api, err := newAPI(a.mux, lf)
	if err != nil {
		return nil, err
	}
	tok, err := env.token(spec.Room, spec.Identity, spec.Role)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: token: %v", ErrJoin, spec.Identity, err)
	}
	a.joinStart = env.now()
	a.c, err = client.Dial(ctx, client.Config{
		URL: env.wsURL, Room: spec.Room, Token: tok, API: api, OnTrack: a.onTrack, OnMessage: a.onMessage,
		Logger: env.log.With("identity", spec.Identity), HideCandidates: env.nat,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrJoin, spec.Identity, err)
	}
	a.joined = env.now()
	a.pc.Store(a.c.PC())
	bctx, cancel := context.WithCancel(context.Background())
	a.bgCancel = cancel
	a.bgDone.Add(2)
	go a.sizeLoop(bctx)
	go func() {
		defer a.bgDone.Done()
		a.twcc.run(bctx, a.c.PC().WriteRTCP)
	}()
	return a, nil
}

// publishAll publishes the agent's camera and microphone and returns once
// the server announced them. A Pion client cannot resolve glare (it cannot
// roll back an offer), so it first waits until the server has nothing left
// to offer it (waitQuiet). The caller lets no one else in the room
// publish meanwhile.
func (a *agent) publishAll(ctx context.Context, prior, largeRoom int, quiet time.Duration) error {
	n := a.spec.tracks()
	if n == 0 {
		return nil
	}
	if err := a.waitQuiet(ctx, prior, largeRoom, quiet); err != nil {
		return fmt.Errorf("%w: %s: before publishing: %v", ErrJoin, a.spec.Identity, err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.published = a.env.now()
	if v := a.spec.Video; v != nil && len(v.Layers) > 0 {
		if err := a.publishSimulcast(mctx, v); err != nil {
			return err
		}
	} else if v != nil {
		if err := a.publish(mctx, "video", &client.Synth{Video: true, FPS: v.FPS, Width: v.Width, Height: v.Height,
			FrameBytes: frameBytes(v.Kbps, v.FPS), PacketBytes: a.spec.PacketBytes}); err != nil {
			return err
		}
	}
	if a.spec.Audio {
		if err := a.publishAudio(mctx); err != nil {
			return err
		}
	}
	if err := a.c.WaitPublished(ctx, n); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrJoin, a.spec.Identity, err)
	}
	return nil
}

// waitQuiet waits until no server offer is to be expected: at least prior
// tracks of others are announced (the previous publisher's WaitPublished
// returns when it hears of its own tracks, which may be before we hear of
// them), every track the server's description sends us is received (or
// is audio the server holds back, see expect), no description is being
// applied, and nothing was announced or negotiated for quiet: the server
// subscribes the room to a new track one participant after another after
// announcing it, so our offer may still be on its way.
func (a *agent) waitQuiet(ctx context.Context, prior, largeRoom int, quiet time.Duration) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		announced := a.announced()
		e := a.expect(largeRoom, everReceived)
		calm := a.env.now().Sub(time.Unix(0, a.lastSignal.Load())) >= quiet
		if announced >= prior && len(e.missing) == 0 && !a.c.Negotiating() && calm {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tracks announced; the server sends %d (missing %v, %d held back, %d withheld), "+
				"signaling %s: %w", announced, prior, e.offered, e.missing, e.gated, e.withheld, a.c.PC().SignalingState(),
				ctx.Err())
		case <-tick.C:
		}
	}
}

// announced counts the tracks of others the server told us of.
func (a *agent) announced() int {
	self := a.c.Self().ID
	n := 0
	for _, t := range a.c.Tracks() {
		if t.ParticipantID != self {
			n++
		}
	}
	return n
}

// publishAudio publishes the microphone with its audio level (speech or
// silence) and the agent's source number in every packet.
func (a *agent) publishAudio(ctx context.Context) error {
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000,
		Channels: 2}, "audio", a.spec.Identity)
	if err != nil {
		return err
	}
	as, err := a.c.PublishAudio(tr, sfu.SourceMicrophone)
	if err != nil {
		return fmt.Errorf("%w: %s: publish audio: %v", ErrJoin, a.spec.Identity, err)
	}
	as.SetLevel(a.spec.Level, a.spec.speaks())
	a.audio = as
	s := &client.Synth{Writer: as, Source: a.source, DTX: as.Discontinuous}
	s.WatchRTCP(as.Sender)
	a.startSynth(ctx, s)
	return nil
}

func (a *agent) publish(ctx context.Context, kind string, s *client.Synth) error {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	source := sfu.SourceCamera
	tr, err := webrtc.NewTrackLocalStaticRTP(codec, kind, a.spec.Identity)
	if err != nil {
		return err
	}
	sender, err := a.c.Publish(tr, source)
	if err != nil {
		return fmt.Errorf("%w: %s: publish %s: %v", ErrJoin, a.spec.Identity, kind, err)
	}
	s.Track = tr
	s.WatchRTCP(sender)
	a.startSynth(ctx, s)
	return nil
}

// startSynth runs s until ctx ends.
func (a *agent) startSynth(ctx context.Context, s *client.Synth) {
	a.synths = append(a.synths, s)
	a.synthDone.Add(1)
	go func() {
		defer a.synthDone.Done()
		s.Run(ctx)
	}()
}

// onTrack runs on Pion's goroutine for the track: it becomes the track's
// reader until the track ends.
func (a *agent) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver, info sfu.TrackInfo) {
	rt := newRecvTrack(tr.StreamID(), tr.Kind() == webrtc.RTPCodecTypeVideo, &a.hist, &a.stackHist,
		a.arrivals.ring(uint32(tr.SSRC())), a.env.now)
	if isSlot(tr.StreamID()) {
		rt.slot = newSlotStats(&a.slotHist)
	}
	if rt.video {
		ssrc := uint32(tr.SSRC())
		rt.requestKeyframe = func() {
			if pc := a.pc.Load(); pc != nil {
				_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
			}
		}
	}
	a.mu.Lock()
	a.tracks = append(a.tracks, rt)
	a.infos[rt] = info
	a.mu.Unlock()
	rt.readLoop(trackReader{tr})
}

// trackReader drops the interceptor attributes Read returns.
type trackReader struct{ tr *webrtc.TrackRemote }

func (r trackReader) Read(b []byte) (int, error) {
	n, _, err := r.tr.Read(b)
	return n, err
}

// receiving returns the agent's receive tracks.
func (a *agent) receiving() []*recvTrack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*recvTrack(nil), a.tracks...)
}

// publisherOf says which participant published a received track, asking
// the signaling client when OnTrack came before track-published.
func (a *agent) publisherOf(rt *recvTrack) string {
	a.mu.Lock()
	info := a.infos[rt]
	a.mu.Unlock()
	if info.ParticipantID == "" && a.c != nil {
		info = a.c.Tracks()[rt.streamID]
	}
	return info.ParticipantID
}

// sent sums what the agent's synths sent.
func (a *agent) sent() (packets, bytes int64) {
	for _, s := range a.synths {
		packets += s.Sent.Load()
		bytes += s.SentBytes.Load()
	}
	return
}

// stopMedia stops publishing and waits for the synths.
func (a *agent) stopMedia() {
	if a.cancel != nil {
		a.cancel()
	}
	a.synthDone.Wait()
}

// close leaves and releases everything; safe on a half-built agent.
func (a *agent) close() {
	a.stopMedia()
	if a.bgCancel != nil {
		a.bgCancel()
		a.bgDone.Wait()
	}
	if a.c != nil {
		a.c.Close()
	}
	if a.mux != nil {
		_ = a.mux.Close()
	}
	if a.conn != nil {
		_ = a.conn.Close()
	}
}
