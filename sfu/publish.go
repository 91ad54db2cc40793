package sfu

import (
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// onTrack runs on Pion's goroutine for each incoming track, or each
// simulcast layer, and becomes its reader until it ends.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if !p.info.CanPublish() {
		_ = recv.Stop()
		return
	}
	if remote.RID() != "" && remote.Kind() == webrtc.RTPCodecTypeVideo {
		p.onLayer(remote, recv)
		return
	}
	up := p.newUpTrack(remote)
	l := up.addLayer("", 0, uint32(remote.SSRC()), p.cacheSize(remote.Kind()))
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI && up.info.Kind == "audio" {
			up.levelExt = uint8(e.ID)
		}
	}
	l.twccID = transportCCID(recv)
	go readSenderReports(recv, "", l)
	p.mu.Lock()
	if up.info.Kind == "audio" && p.modMuted {
		up.blocked.Store(true)
	}
	p.ups[up] = struct{}{}
	p.mu.Unlock()
	if !p.room.publish(p, up) {
		up.close()
		return
	}
	p.in.add(l)
	l.readLoop(trackReader{remote})
	p.in.remove(l)
	p.room.unpublish(up)
	p.mu.Lock()
	delete(p.ups, up)
	p.mu.Unlock()
}

// onLayer handles one simulcast layer: the first layer of a transceiver
// publishes the track, later ones join it.
func (p *Participant) onLayer(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	fresh := p.newUpTrack(remote) // before locking: it reads p.sources
	p.mu.Lock()
	up := p.simul[recv]
	created := up == nil
	if created {
		up = fresh
		up.simulcast = true
		for _, t := range p.pc.GetTransceivers() {
			if t.Receiver() == recv {
				up.mid = t.Mid()
			}
		}
		id, mid := up.info.ID, up.mid
		up.notifyLayers = func(active []string) { p.n.Layers(id, mid, active) }
		p.simul[recv] = up
		p.ups[up] = struct{}{}
	}
	p.mu.Unlock()
	idx, ok := layerIndex(remote.RID())
	if !ok {
		idx = -1
		for i, l := range up.layerSnapshot() {
			if l == nil {
				idx = i
				break
			}
		}
	}
	// Smaller layers send fewer packets: the same second or two of
	// history for NACKs takes fewer slots (top layer half the size of a
	// single stream's cache, each layer below half of that).
	size := p.cacheSize(remote.Kind())
	if idx >= 0 {
		size >>= maxLayers - idx
	}
	l := up.addLayer(remote.RID(), idx, uint32(remote.SSRC()), size)
	if l == nil {
		p.log.Warn("simulcast layer refused", "track", up.info.ID, "rid", remote.RID())
		return
	}
	p.log.Debug("simulcast layer", "track", up.info.ID, "rid", remote.RID(), "ssrc", remote.SSRC())
	l.twccID = transportCCID(recv)
	if created && !p.room.publish(p, up) {
		up.close()
		return
	}
	go readSenderReports(recv, remote.RID(), l)
	p.in.add(l)
	l.readLoop(trackReader{remote})
	p.in.remove(l)
	if up.removeLayer(l) {
		p.room.unpublish(up)
		p.mu.Lock()
		delete(p.ups, up)
		delete(p.simul, recv)
		p.mu.Unlock()
	}
}

// transportCCID is the negotiated id of the transport-wide sequence
// number extension on a receiver's streams (0: none).
func transportCCID(recv *webrtc.RTPReceiver) uint8 {
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 256 {
			return uint8(e.ID)
		}
	}
	return 0
}

func (p *Participant) cacheSize(kind webrtc.RTPCodecType) int {
	if kind == webrtc.RTPCodecTypeAudio {
		return p.room.sfu.cfg.AudioCacheSize
	}
	return p.room.sfu.cfg.VideoCacheSize
}

// newUpTrack makes the UpTrack for a remote track (its layers are added
// by the caller).
func (p *Participant) newUpTrack(remote *webrtc.TrackRemote) *UpTrack {
	kind := remote.Kind().String()
	p.mu.Lock()
	source, ok := p.sources[remote.ID()]
	p.mu.Unlock()
	if !ok {
		source = SourceCamera
		if kind == "audio" {
			source = SourceMicrophone
		}
	}
	info := TrackInfo{ID: newID("T"), ParticipantID: p.info.ID, Kind: kind, Source: source,
		MimeType: remote.Codec().MimeType}
	cfg := p.room.sfu.cfg
	opts := fanoutOptions{queueLen: cfg.QueueLen, perWriter: cfg.SubscribersPerWriter,
		maxWriters: cfg.MaxWritersPerTrack, inlineMax: cfg.InlineFanout, kfMinSpacing: cfg.KeyframeMinSpacing, socket: p.room.sfu.socket,
		behind: &p.room.sfu.behind}
	if b := p.room.sfu.batch; b != nil {
		opts.cork = b
	}
	up := newTrack(info, remote.Codec(), cfg.Clock, p.log, &p.room.sfu.ctr, opts, p.sendPLI)
	up.pubRole = p.info.Role
	return up
}

func (p *Participant) sendPLI(ssrc uint32) {
	if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		p.log.Debug("PLI not sent", "err", err)
	}
}

// trackReader adapts a TrackRemote to packetSource.
type trackReader struct{ t *webrtc.TrackRemote }

func (r trackReader) Read(b []byte) (int, error) {
	n, _, err := r.t.Read(b)
	return n, err
}

// readSenderReports keeps the publisher's NTP/RTP mapping for lip sync and
// for the receiver reports' round trip (inbound.go).
func readSenderReports(recv *webrtc.RTPReceiver, rid string, l *upLayer) {
	for {
		var pkts []rtcp.Packet
		var err error
		if rid == "" {
			pkts, _, err = recv.ReadRTCP()
		} else {
			pkts, _, err = recv.ReadSimulcastRTCP(rid)
		}
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			if sr, ok := pkt.(*rtcp.SenderReport); ok {
				l.setSenderReport(sr.NTPTime, sr.RTPTime)
			}
		}
	}
}
