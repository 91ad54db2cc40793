package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/internal/netshape"
	"github.com/ducha-dev/ducha/signaling/client"
)

// config is the whole run, from flags.
type config struct {
	Server     string   `json:"server"`
	DataDir    string   `json:"data_dir,omitempty"`
	Spawn      bool     `json:"spawn"`
	ServerBin  string   `json:"server_bin,omitempty"`
	ServerArgs []string `json:"server_args,omitempty"`
	ServerPID  int      `json:"server_pid,omitempty"`

	Scenario string `json:"scenario"`
	Rooms    int    `json:"rooms"`
	Size     int    `json:"size"`
	Counties int    `json:"counties"`
	// LateJoiners: s2, counties that join the full room one at a time after
	// the window, for the join-to-first-frame target.
	LateJoiners int `json:"late_joiners"`

	VideoKbps      int  `json:"video_kbps"`
	FPS            int  `json:"fps"`
	SmallVideoKbps int  `json:"small_video_kbps"`
	SmallFPS       int  `json:"small_fps"`
	PacketBytes    int  `json:"packet_bytes"`
	Audio          bool `json:"audio"`
	// Speakers: how many participants per room stamp a speech level on
	// their audio (the first ones: the supervisor, then counties); the
	// others stamp silence. -1: the scenario's default (s1 and ramp
	// everyone, s2 two).
	Speakers int `json:"speakers"`
	// LargeRoom is the server's --large-room: rooms of more participants
	// forward only the loudest speakers' audio, late joiners get speaker
	// slots, counties get no county video (PROTOCOL.md "Large rooms").
	LargeRoom int `json:"large_room"`

	// Simulcast: camera video as layers q, h, f (PROTOCOL.md "Simulcast").
	Simulcast      bool     `json:"simulcast"`
	LayerKbps      kbpsList `json:"layer_kbps"`       // s1, ramp, s2 supervisor; empty: derived from VideoKbps
	SmallLayerKbps kbpsList `json:"small_layer_kbps"` // s2 counties; empty: derived from SmallVideoKbps
	// Tiles: the size at which receivers show a video (video-size).
	S1Tile           tileSize `json:"s1_tile"`
	S2SupervisorTile tileSize `json:"s2_supervisor_tile"` // the supervisor's view of each county
	S2CountyTile     tileSize `json:"s2_county_tile"`     // a county's view of the supervisor
	S2PeerTile       tileSize `json:"s2_peer_tile"`       // a county's view of another county

	Duration      time.Duration `json:"duration_ns"`
	SettleTimeout time.Duration `json:"settle_timeout_ns"`
	Grace         time.Duration `json:"grace_ns"`
	Warmup        time.Duration `json:"warmup_ns"`
	JoinParallel  int           `json:"join_parallel"`
	JoinTimeout   time.Duration `json:"join_timeout_ns"`

	RampStep    int           `json:"ramp_step"`
	RampMax     int           `json:"ramp_max"`
	MaxLoss     float64       `json:"max_loss_percent"`
	MaxP99Delay time.Duration `json:"max_p99_delay_ns"`

	DownKbps  int           `json:"down_kbps"`
	DownDelay time.Duration `json:"down_delay_ns"`
	DownLoss  float64       `json:"down_loss_percent"`
	DownQueue time.Duration `json:"down_queue_ns"`
	DownWho   string        `json:"down_who"`

	LocalIP  string `json:"local_ip"`
	NAT      bool   `json:"nat"`
	Seed     uint64 `json:"seed"`
	Nice     int    `json:"nice"`
	JSONPath string `json:"-"`
	LogLevel string `json:"-"`
	PProf    string `json:"-"`
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Server, "server", "http://127.0.0.1:8080", "base URL of a running ducha server (ignored with --spawn)")
	fs.StringVar(&c.DataDir, "data-dir", "", "the running server's data directory, to mint join tokens with its key")
	fs.BoolVar(&c.Spawn, "spawn", false, "build and start a ducha server of our own on free loopback ports, stop it after")
	fs.StringVar(&c.ServerBin, "server-bin", "", "with --spawn: the ducha binary to start (default: go build ./cmd/ducha)")
	fs.Func("server-arg", "with --spawn: one more argument for `ducha serve` (repeatable)", func(s string) error {
		c.ServerArgs = append(c.ServerArgs, s)
		return nil
	})
	fs.IntVar(&c.ServerPID, "server-pid", 0, "pid of the running server, to read its CPU and memory from /proc (else /metrics)")

	fs.StringVar(&c.Scenario, "scenario", "s1", "s1 (rooms of 1+size, all to all), s2 (1 supervisor + counties), ramp (adds s1 rooms until a limit is crossed)")
	fs.IntVar(&c.Rooms, "rooms", 1, "s1: number of rooms")
	fs.IntVar(&c.Size, "size", 4, "s1 and ramp: county participants per room (rooms are 1+size)")
	fs.IntVar(&c.Counties, "counties", 8, "s2: county participants with the one supervisor")
	fs.IntVar(&c.LateJoiners, "late-joiners", 10, "s2: after the window, counties that join the full room one at a time; their join to first frame is reported apart")

	fs.IntVar(&c.VideoKbps, "video-kbps", 1000, "video bitrate of s1 participants and of the s2 supervisor (0: no video)")
	fs.IntVar(&c.FPS, "fps", 30, "frames per second of that video")
	fs.IntVar(&c.SmallVideoKbps, "small-video-kbps", 150, "s2: video bitrate of each county (0: audio only)")
	fs.IntVar(&c.SmallFPS, "small-fps", 15, "s2: frames per second of the county video")
	fs.IntVar(&c.PacketBytes, "packet-bytes", 1100, "largest RTP payload of a video packet")
	fs.BoolVar(&c.Audio, "audio", true, "everyone also sends Opus-sized audio (50 packets/s)")
	fs.IntVar(&c.Speakers, "speakers", -1, "participants per room who speak: their audio carries a speech level "+
		"(RFC 6464, -25 dBov and down), the others' silence; the first ones speak (the supervisor, then counties). "+
		"-1: everyone in s1 and ramp, 2 in s2")
	fs.IntVar(&c.LargeRoom, "large-room", 10, "the server's --large-room (rooms of more participants forward only the "+
		"loudest speakers' audio and no county video to counties); passed on to a spawned server when given")
	fs.BoolVar(&c.Simulcast, "simulcast", true, "send camera video as simulcast layers q, h, f (320x180, 640x360, "+
		"1280x720); --simulcast=false sends one stream, to compare")
	fs.Var(&c.LayerKbps, "layer-kbps", "simulcast: q,h,f bitrates of s1 participants and the s2 supervisor "+
		"(default: --video-kbps divided by 10, 3 and 1)")
	fs.Var(&c.SmallLayerKbps, "small-layer-kbps", "simulcast: q,h,f bitrates of s2 counties "+
		"(default: --small-video-kbps divided by 10, 3 and 1)")
	c.S1Tile, c.S2SupervisorTile, c.S2CountyTile, c.S2PeerTile = tileSize{640, 360}, tileSize{320, 180},
		tileSize{1280, 720}, tileSize{320, 180}
	fs.Var(&c.S1Tile, "s1-tile", "s1 and ramp: WxH at which everyone shows everyone's video (video-size; 0x0: hidden)")
	fs.Var(&c.S2SupervisorTile, "s2-supervisor-tile", "s2: WxH at which the supervisor shows each county")
	fs.Var(&c.S2CountyTile, "s2-county-tile", "s2: WxH at which a county shows the supervisor")
	fs.Var(&c.S2PeerTile, "s2-peer-tile", "s2: WxH at which a county shows another county")

	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measurement window (per step for ramp)")
	fs.DurationVar(&c.SettleTimeout, "settle-timeout", 60*time.Second, "how long to wait for media to reach every receiver before measuring")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "wait after media reached everyone (join keyframes, first NACKs) before measuring")
	fs.DurationVar(&c.Grace, "grace", time.Second, "wait after the publishers stop, for late retransmissions, before counting loss")
	fs.IntVar(&c.JoinParallel, "join-parallel", 4, "participants connecting at the same time (they publish one at a time per room)")
	fs.DurationVar(&c.JoinTimeout, "join-timeout", time.Minute, "how long one participant may take to connect, or to publish")

	fs.IntVar(&c.RampStep, "ramp-step", 1, "ramp: rooms added per step")
	fs.IntVar(&c.RampMax, "ramp-max", 40, "ramp: stop after this many rooms even if no limit was crossed")
	fs.Float64Var(&c.MaxLoss, "max-loss", 1, "ramp: loss limit in percent (loss after NACK, SFU drops included)")
	fs.DurationVar(&c.MaxP99Delay, "max-p99-delay", 20*time.Millisecond, "ramp: limit of the p99 forwarding delay")

	fs.IntVar(&c.DownKbps, "down-kbps", 0, "cap each throttled subscriber's downlink at this rate (0: no cap)")
	fs.DurationVar(&c.DownDelay, "down-delay", 0, "delay added to each throttled subscriber's downlink")
	fs.Float64Var(&c.DownLoss, "down-loss", 0, "random loss in percent on each throttled subscriber's downlink (media packets)")
	fs.DurationVar(&c.DownQueue, "down-queue", 200*time.Millisecond, "bottleneck buffer of a capped downlink, as queueing time")
	fs.StringVar(&c.DownWho, "down-who", "all", "who gets the throttled downlink: all, counties or supervisors")

	fs.StringVar(&c.LocalIP, "local-ip", "127.0.0.1", "address the simulated participants bind their media sockets to")
	fs.BoolVar(&c.NAT, "nat", false, "the simulated participants keep their ICE candidates to themselves, as behind NAT: "+
		"the server learns their addresses from their connectivity checks (peer-reflexive candidates)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the random downlink loss")
	fs.IntVar(&c.Nice, "nice", 0, "once the server is up, lower the load tool's own scheduling priority to this nice value "+
		"(1..19), so that the simulated clients, which share the machine with the server, yield the CPU to it")
	fs.StringVar(&c.JSONPath, "json", "", "write the JSON report to this file")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.PProf, "pprof", "", "serve the load tool's own pprof on this loopback address (e.g. 127.0.0.1:6061)")
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("ducha-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "ducha-load: a load generator of real WebRTC participants for ducha.\n\n"+
			"  ducha-load --spawn --scenario s1 --rooms 2 --size 4 --duration 20s --json s1.json\n"+
			"  ducha-load --server http://127.0.0.1:8080 --data-dir ./data --scenario s2 --counties 30\n\n")
		fs.PrintDefaults()
	}
	var c config
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrConfig, fs.Args())
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "large-room" })
	if err := c.syncLargeRoom(given); err != nil {
		return c, err
	}
	return c, c.validate()
}

// syncLargeRoom makes --large-room and the spawned server agree: a
// --server-arg=--large-room=N is what the server runs with, and a
// --large-room given to us is passed on.
func (c *config) syncLargeRoom(given bool) error {
	n, found, err := serverArgInt(c.ServerArgs, "large-room")
	switch {
	case err != nil:
		return fmt.Errorf("%w: --server-arg: %v", ErrConfig, err)
	case found && given && n != c.LargeRoom:
		return fmt.Errorf("%w: --large-room %d but --server-arg says %d", ErrConfig, c.LargeRoom, n)
	case found:
		c.LargeRoom = n
	case given && c.Spawn:
		c.ServerArgs = append(c.ServerArgs, "--large-room", strconv.Itoa(c.LargeRoom))
	}
	return nil
}

// serverArgInt finds an integer flag among the server's arguments, in the
// forms the flag package takes (-name N, --name=N).
func serverArgInt(args []string, name string) (n int, found bool, err error) {
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if len(a) == len(args[i]) || len(args[i])-len(a) > 2 {
			continue // not a flag
		}
		v, hasValue := "", false
		if k, val, ok := strings.Cut(a, "="); ok {
			a, v, hasValue = k, val, true
		}
		if a != name {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return 0, false, fmt.Errorf("--%s without a value", name)
			}
			i++
			v = args[i]
		}
		if n, err = strconv.Atoi(v); err != nil {
			return 0, false, fmt.Errorf("--%s %q: %v", name, v, err)
		}
		found = true
	}
	return n, found, nil
}

func (c *config) validate() error {
	var errs []string
	check := func(bad bool, format string, a ...any) {
		if bad {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	check(!c.Spawn && c.DataDir == "", "--data-dir (the server's, to mint tokens) or --spawn is required")
	check(c.Spawn && c.ServerPID != 0, "--server-pid makes no sense with --spawn")
	check(!c.Spawn && (c.ServerBin != "" || len(c.ServerArgs) > 0), "--server-bin and --server-arg need --spawn")
	switch c.Scenario {
	case "s1", "ramp":
		check(c.Size < 1 || c.Size > 200, "--size %d: want 1..200", c.Size)
		check(c.Scenario == "s1" && (c.Rooms < 1 || c.Rooms > 1000), "--rooms %d: want 1..1000", c.Rooms)
	case "s2":
		check(c.Counties < 1 || c.Counties > 1000, "--counties %d: want 1..1000", c.Counties)
	default:
		errs = append(errs, fmt.Sprintf("--scenario %q: want s1, s2 or ramp", c.Scenario))
	}
	check(c.VideoKbps < 0 || c.SmallVideoKbps < 0, "video bitrates must not be negative")
	check(c.FPS < 1 || c.FPS > 120 || c.SmallFPS < 1 || c.SmallFPS > 120, "frame rates: want 1..120")
	for _, l := range []kbpsList{c.LayerKbps, c.SmallLayerKbps} {
		check(len(l) != 0 && len(l) != 3, "layer bitrates %v: want three, q,h,f", []int(l))
	}
	check(c.PacketBytes < 200 || c.PacketBytes > 1400, "--packet-bytes %d: want 200..1400", c.PacketBytes)
	check(c.Speakers < -1, "--speakers %d: want -1 (scenario default) or more", c.Speakers)
	check(c.LargeRoom < 1, "--large-room %d: want at least 1", c.LargeRoom)
	check(c.Duration < time.Second, "--duration %s: want at least 1s", c.Duration)
	check(c.SettleTimeout < time.Second, "--settle-timeout %s: want at least 1s", c.SettleTimeout)
	check(c.Grace < 0 || c.Warmup < 0, "--grace and --warmup must not be negative")
	check(c.JoinParallel < 1 || c.JoinParallel > 64, "--join-parallel %d: want 1..64", c.JoinParallel)
	check(c.LateJoiners < 0 || c.LateJoiners > 100, "--late-joiners %d: want 0..100", c.LateJoiners)
	check(c.JoinTimeout < time.Second, "--join-timeout %s: want at least 1s", c.JoinTimeout)
	if c.PProf != "" {
		host, _, err := net.SplitHostPort(c.PProf)
		check(err != nil || !net.ParseIP(host).IsLoopback(), "--pprof %q: want a loopback host:port", c.PProf)
	}
	check(c.RampStep < 1, "--ramp-step %d: want at least 1", c.RampStep)
	check(c.RampMax < c.RampStep, "--ramp-max %d: want at least --ramp-step", c.RampMax)
	check(c.MaxLoss <= 0 || c.MaxP99Delay <= 0, "--max-loss and --max-p99-delay must be positive")
	check(c.DownKbps < 0 || c.DownDelay < 0 || c.DownQueue < 0, "downlink settings must not be negative")
	check(c.DownLoss < 0 || c.DownLoss >= 100, "--down-loss %g: want 0..100 (percent)", c.DownLoss)
	check(c.Nice < 0 || c.Nice > 19, "--nice %d: want 0..19", c.Nice)
	check(c.DownWho != "all" && c.DownWho != "counties" && c.DownWho != "supervisors",
		"--down-who %q: want all, counties or supervisors", c.DownWho)
	check(net.ParseIP(c.LocalIP) == nil || net.ParseIP(c.LocalIP).To4() == nil, "--local-ip %q: want an IPv4 address", c.LocalIP)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return nil
}

// downFor is the downlink a participant of this role gets.
func (c *config) downFor(role string) netshape.LinkShape {
	s := netshape.LinkShape{RateKbps: c.DownKbps, Delay: c.DownDelay, Loss: c.DownLoss / 100, Queue: c.DownQueue}
	switch {
	case c.DownWho == "counties" && role != "county", c.DownWho == "supervisors" && role != "supervisor":
		return netshape.LinkShape{}
	}
	return s
}

// speakersIn is how many of a room's participants speak.
func (c *config) speakersIn(roomSize int) int {
	switch {
	case c.Speakers >= 0:
		return min(c.Speakers, roomSize)
	case c.Scenario == "s2":
		return min(2, roomSize)
	}
	return roomSize
}

// speechLevel is the audio level (-dBov) of the i-th speaker of a room:
// -25 dBov for the first, 2 dB quieter for each next one, down to -45
// (still speech to the server, louder than -50). Equal levels would tie,
// and the server breaks ties in no fixed order.
func speechLevel(i int) int { return min(client.LevelSpeech+2*i, 45) }

// layersFor is the simulcast plan of a video of kbps: explicit q,h,f
// bitrates, or kbps/10, kbps/3 and kbps. nil without simulcast or video.
func (c *config) layersFor(kbps int, explicit kbpsList) []layerSpec {
	if !c.Simulcast || kbps <= 0 {
		return nil
	}
	rates := []int{max(kbps/10, 1), max(kbps/3, 1), kbps}
	if len(explicit) == 3 {
		rates = explicit
	}
	out := make([]layerSpec, 0, 3)
	for i, rid := range client.DefaultRIDs() {
		w, h := client.LayerSize(rid)
		out = append(out, layerSpec{RID: rid, Kbps: rates[i], Width: w, Height: h})
	}
	return out
}

// kbpsList is a flag of comma-separated bitrates.
type kbpsList []int

func (l *kbpsList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *kbpsList) Set(s string) error {
	var out kbpsList
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return fmt.Errorf("%q: want positive kbit/s, comma-separated", s)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// tileSize is a flag of the form WxH.
type tileSize struct{ W, H int }

func (t *tileSize) String() string { return fmt.Sprintf("%dx%d", t.W, t.H) }

func (t *tileSize) Set(s string) error {
	ws, hs, ok := strings.Cut(s, "x")
	w, errW := strconv.Atoi(ws)
	h, errH := strconv.Atoi(hs)
	if !ok || errW != nil || errH != nil || w < 0 || h < 0 || w > 16384 || h > 16384 || (w == 0) != (h == 0) {
		return fmt.Errorf("%q: want WxH, 0..16384 each (0x0: not shown)", s)
	}
	*t = tileSize{w, h}
	return nil
}

// MarshalJSON writes a tile as "WxH", as the flag takes it.
func (t tileSize) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(t.String())), nil }
