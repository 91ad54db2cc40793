// One RTCPeerConnection carrying both directions, negotiated with "perfect
// negotiation" (PROTOCOL.md, flow step 3). The server is impolite and this
// client polite: when both sides offer at once, ours is rolled back.

import { fixExtmapIds, extmapIds } from './sdp.js';
import { sendEncodings, applyLayers } from './simulcast.js';

// How long "disconnected" may last before we give up on the connection. Chrome
// reports "failed" on its own only after about half a minute, which is a long
// frozen picture for a county official on a shaky line.
const DISCONNECTED_GRACE_MS = 12000;

function defaultSource(kind) {
  return kind === 'audio' ? 'microphone' : 'camera';
}

export class Peer {
  // signal(type, data) sends a message to the server. onTrack({track,
  // streamId, stream}) reports a remote track; onFailed(reason) says the
  // connection cannot recover.
  constructor({ iceServers = [], signal, onTrack, onFailed, onConnected = () => {}, log = () => {} }) {
    this.signal = signal;
    this.onTrack = onTrack;
    this.onFailed = onFailed;
    this.onConnected = onConnected;
    this.log = log;
    this.sources = new Map(); // local track id -> camera | microphone | screen
    this.makingOffer = false;
    this.pending = []; // remote candidates that arrived before a remote description
    this.queue = Promise.resolve();
    this.closed = false;
    this.disconnectTimer = null;

    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    pc.onnegotiationneeded = () => this.offer();
    pc.onicecandidate = (ev) => {
      // A null candidate means gathering is over; the protocol spells that
      // as an empty candidate string.
      const c = ev.candidate ? ev.candidate.toJSON() : { candidate: '' };
      this.signal('candidate', c);
    };
    pc.ontrack = (ev) => {
      const stream = ev.streams && ev.streams[0] ? ev.streams[0] : null;
      this.onTrack({ track: ev.track, streamId: stream ? stream.id : '', stream });
    };
    pc.onconnectionstatechange = () => this.connectionChanged();
  }

  // addTrack sends a local track, declared to the server as source. The
  // camera goes out as simulcast layers (simulcast.js), the rest as one
  // stream each.
  addTrack(track, stream, source) {
    const src = source || defaultSource(track.kind);
    this.sources.set(track.id, src);
    // addTransceiver, not addTrack: addTrack would reuse an m-line the
    // server opened to send us someone else's track, mixing directions on one
    // m-line. Our own m-lines, send-only, keep the two directions apart.
    const init = { direction: 'sendonly', streams: [stream] };
    const encodings = track.kind === 'video' ? sendEncodings(src) : undefined;
    if (encodings) init.sendEncodings = encodings;
    const { sender } = this.pc.addTransceiver(track, init);
    if (track.kind === 'video') this.enqueue(() => this.keepResolution(sender));
    return sender;
  }

  // The recording is evidence: a document held up to the camera must stay
  // legible, so under CPU or bandwidth pressure the browser should drop
  // frames rather than shrink the picture (its default for cameras). The
  // smaller simulcast layers are there for viewers who need less. Queued:
  // a getParameters/setParameters pair must not interleave with setLayers.
  async keepResolution(sender) {
    try {
      const params = sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      await sender.setParameters(params);
    } catch (err) {
      this.log('peer: degradationPreference not set', err);
    }
  }

  // setLayers follows the server's `layers` message for our sender on media
  // section mid: the layers nobody receives are paused (the camera is then
  // not encoded at that size, which spares a county PC's CPU and uplink), and
  // a listed one is resumed at once.
  setLayers(mid, active) {
    return this.enqueue(async () => {
      if (this.closed) return;
      const tr = this.pc.getTransceivers().find((t) => t.mid === mid && t.sender);
      if (!tr || !tr.sender.track) {
        this.log('peer: layers for an unknown media section, ignored', mid);
        return;
      }
      // getParameters and setParameters within one task: the parameters
      // expire once the task ends.
      const params = tr.sender.getParameters();
      if (!applyLayers(params.encodings, active)) return;
      try {
        await tr.sender.setParameters(params);
        const on = params.encodings.filter((e) => e.rid && e.active).map((e) => e.rid);
        this.log(`peer: layers of mid ${mid} now ${on.length ? on.join(',') : 'none'}`);
      } catch (err) {
        this.log('peer: layers not applied', mid, err);
      }
    });
  }

  // layers reports our simulcast senders' layers: mid -> {rid: active}.
  layers() {
    const out = {};
    for (const t of this.pc.getTransceivers()) {
      const enc = t.mid && t.sender && t.sender.track ? t.sender.getParameters().encodings || [] : [];
      if (enc.some((e) => e.rid)) out[t.mid] = Object.fromEntries(enc.map((e) => [e.rid, e.active !== false]));
    }
    return out;
  }

  sourceMap() {
    const out = {};
    for (const s of this.pc.getSenders()) {
      if (s.track) out[s.track.id] = this.sources.get(s.track.id) || defaultSource(s.track.kind);
    }
    return out;
  }

  async offer() {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      try {
        await this.pc.setLocalDescription();
      } catch (err) {
        if (this.closed || this.pc.signalingState !== 'stable') throw err;
        // Chromium can produce an offer it then refuses after a glare
        // rollback (see fixExtmapIds); repair the ids and apply it ourselves.
        const offer = await this.pc.createOffer();
        const server = this.pc.currentRemoteDescription || this.pc.remoteDescription;
        const fixed = fixExtmapIds(offer.sdp, extmapIds(server && server.sdp));
        if (!fixed.changed) throw err;
        this.log('peer: offer refused, retrying with repaired extension ids', err.message);
        await this.pc.setLocalDescription({ type: 'offer', sdp: fixed.sdp });
      }
      // A server offer may have been applied in between (implicit rollback),
      // and then what we hold is not an offer of ours any more.
      const desc = this.pc.localDescription;
      if (this.closed || this.pc.signalingState !== 'have-local-offer' || !desc || desc.type !== 'offer') return;
      console.debug('[ducha] sending offer');
      this.signal('offer', { sdp: desc.sdp, sources: this.sourceMap() });
    } catch (err) {
      // Without a working offer our media never reaches the server; start
      // over with a fresh connection rather than sit in a silent call.
      if (!this.closed && this.pc.signalingState === 'stable') this.negotiationFailed('making an offer', err);
      else this.log('peer: making an offer failed', err);
    } finally {
      this.makingOffer = false;
    }
  }

  // Remote messages are applied one at a time, in arrival order: a candidate
  // must never overtake the description it belongs to.
  enqueue(fn) {
    this.queue = this.queue.then(fn).catch((err) => this.log('peer: remote message failed', err));
    return this.queue;
  }

  handleOffer(sdp) {
    return this.enqueue(async () => {
      if (this.closed) return;
      try {
        // Polite side: never ignore the server's offer. If our own offer is
        // outstanding (makingOffer or have-local-offer), setRemoteDescription
        // rolls it back; negotiationneeded fires again once we are stable.
        if (this.makingOffer || this.pc.signalingState !== 'stable') this.log('peer: glare, rolling back our offer');
        await this.pc.setRemoteDescription({ type: 'offer', sdp });
        await this.flushCandidates();
        await this.pc.setLocalDescription();
        if (this.closed) return;
        this.signal('answer', { sdp: this.pc.localDescription.sdp });
      } catch (err) {
        this.negotiationFailed('applying the server offer', err);
      }
    });
  }

  handleAnswer(sdp) {
    return this.enqueue(async () => {
      if (this.closed) return;
      if (this.pc.signalingState !== 'have-local-offer') {
        // The server ignores a client offer during glare and never answers
        // it, but an answer that crossed our rollback can still arrive.
        this.log('peer: answer without an outstanding offer, ignored');
        return;
      }
      try {
        await this.pc.setRemoteDescription({ type: 'answer', sdp });
        await this.flushCandidates();
      } catch (err) {
        this.negotiationFailed('applying the server answer', err);
      }
    });
  }

  // negotiationFailed gives up on this connection: the two sides no longer
  // agree on the session, and only a fresh one (a re-join) repairs that.
  negotiationFailed(what, err) {
    this.log(`peer: ${what} failed`, err);
    if (!this.closed) this.onFailed('negotiation_failed');
  }

  handleCandidate(c) {
    return this.enqueue(async () => {
      if (this.closed || !c) return;
      if (!this.pc.remoteDescription) {
        this.pending.push(c);
        return;
      }
      await this.addCandidate(c);
    });
  }

  async flushCandidates() {
    const list = this.pending;
    this.pending = [];
    for (const c of list) await this.addCandidate(c);
  }

  async addCandidate(c) {
    try {
      await this.pc.addIceCandidate({
        candidate: c.candidate || '',
        sdpMid: c.sdpMid ?? null,
        sdpMLineIndex: c.sdpMLineIndex ?? null,
        usernameFragment: c.usernameFragment ?? null,
      });
    } catch (err) {
      // A candidate for a rolled-back or removed m-line is harmless.
      this.log('peer: candidate not added', err);
    }
  }

  connectionChanged() {
    if (this.closed) return;
    const state = this.pc.connectionState;
    console.debug('[ducha] peer connection', state);
    clearTimeout(this.disconnectTimer);
    if (state === 'connected') {
      this.onConnected();
    } else if (state === 'failed') {
      this.onFailed('ice_failed');
    } else if (state === 'disconnected') {
      this.disconnectTimer = setTimeout(() => {
        if (!this.closed && this.pc.connectionState === 'disconnected') this.onFailed('ice_disconnected');
      }, DISCONNECTED_GRACE_MS);
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.disconnectTimer);
    const pc = this.pc;
    pc.onnegotiationneeded = null;
    pc.onicecandidate = null;
    pc.ontrack = null;
    pc.onconnectionstatechange = null;
    pc.close();
  }
}
