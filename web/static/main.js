// The join page: read the invitation link, join the room, publish the
// camera and microphone, and keep the call alive across network drops.

import { createI18n } from './i18n.js';
import { Signaling, socketURL, PROTOCOL_VERSION, FATAL_ERROR_CODES, FATAL_CLOSE_CODES } from './signaling.js';
import { Peer } from './peer.js';
import { UI } from './ui.js';
import { openMedia } from './media.js';
import { parseLink, fatalDialog } from './link.js';
import { ChatPanel } from './chat.js';
import { VideoSizes } from './videosize.js';
import { isSlotStream, awaitedTracks, tileMedia } from './slots.js';

const BACKOFF_MS = [1000, 2000, 4000, 8000];
const CLOSE_PEER_FAILED = 4901;
// Refusals of a supervision session (PROTOCOL.md): the same link cannot
// succeed later, so the page ends instead of reconnecting.
const SESSION_FATAL_CODES = new Set(['session_ended', 'invitation_revoked', 'invitation_not_yet_valid']);
const CLOSE_SESSION_REFUSED = 4003;
// `closed` reasons that are someone's decision: reconnecting would undo it.
const FINAL_CLOSE_REASONS = new Set(['replaced', 'removed', 'session_ended']);
// A track the server announced but never sends (it may forward only some)
// must not hold our camera back for long.
const SUBSCRIBE_WAIT_MS = 3000;

class Call {
  constructor(link, i18n) {
    this.room = link.room;
    this.token = link.token;
    this.i18n = i18n;
    this.phase = 'starting'; // starting, connecting, lobby, joined, reconnecting, left, error
    this.errorCode = '';
    this.self = null;
    this.participants = new Map(); // id -> Participant (others only)
    this.tracks = new Map(); // server track id -> Track
    this.remote = new Map(); // server track id -> MediaStreamTrack
    // The server sends us speaker slots (we joined a large room): then the
    // participants' audio comes on them, not on tracks of their own.
    this.slotMode = false;
    this.subscribeWait = null; // how the last wait before publishing ended
    this.localStream = null;
    this.mediaState = 'none'; // none, opening, open, declined
    this.audioMuted = false;
    this.videoMuted = false;
    this.sig = null;
    this.peer = null;
    this.attempt = 0;
    this.reconnects = 0;
    this.wasDisconnected = false;
    this.retryTimer = null;
    this.membersDefaultApplied = false;
    this.session = null; // the supervision session; null in ad-hoc rooms
    this.waiting = []; // the lobby, as told to supervisors (lobby-updated)
    this.modMuted = false; // muted by the supervisor
    this.renderTimer = undefined; // set while a render is scheduled (render)
    this.renderFrame = 0;
    // How large we show each received video (video-size), so the server
    // sends a fitting simulcast layer; only while in the call.
    this.sizes = new VideoSizes({
      send: (track, width, height) =>
        this.phase === 'joined' && !!this.sig && this.sig.send('video-size', { track, width, height }) !== null,
    });
    this.ui = new UI(document, i18n, {
      onMic: () => this.toggle('audio'),
      onCam: () => this.toggle('video'),
      onLeave: () => this.leave(),
      onModerate: (action, p) => this.moderate(action, p),
      onVideoSizes: (list) => this.onVideoSizes(list),
    });
    this.chat = new ChatPanel(document, i18n, {
      onSend: (text) => this.phase === 'joined' && !!this.sig && this.sig.send('chat', { text }) !== null,
    });
  }

  log(...args) {
    console.info('[ducha]', ...args);
  }

  start() {
    this.render();
    if (!this.room || !this.token) return this.fatal('invalid_link');
    if (!window.RTCPeerConnection || !window.WebSocket) return this.fatal('unsupported');
    // A page in a background tab or a minimised window shows no video: the
    // server need not send any until it is seen again.
    const visibility = () => this.sizes.setVisible(document.visibilityState !== 'hidden');
    document.addEventListener('visibilitychange', visibility);
    visibility();
    this.connect();
  }

  // --- signaling lifecycle ---

  connect() {
    if (this.phase === 'left' || this.phase === 'error') return;
    if (this.phase !== 'reconnecting') this.phase = 'connecting';
    const sig = new Signaling({
      url: socketURL(),
      onMessage: (msg) => sig === this.sig && this.onMessage(msg),
      onClose: (info) => sig === this.sig && this.onSocketClosed(info),
      log: (...a) => this.log(...a),
    });
    this.sig = sig;
    sig.open().then(
      () => sig.send('join', { version: PROTOCOL_VERSION, room: this.room, token: this.token }),
      (err) => this.log('connect failed', err.message),
    );
    this.render();
  }

  onSocketClosed(info) {
    this.log('socket closed', info);
    if (this.phase === 'left' || this.phase === 'error') return;
    if (FATAL_CLOSE_CODES.has(info.code)) return this.fatal(info.code === 4001 ? 'invalid_token' : 'unsupported_version');
    // The error that explains a 4003 comes first; the close reason carries
    // the same code in case it was lost.
    if (info.code === CLOSE_SESSION_REFUSED) {
      return this.fatal(SESSION_FATAL_CODES.has(info.reason) ? info.reason : 'session_ended');
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.teardownPeer();
    this.sig = null;
    this.phase = 'reconnecting';
    this.wasDisconnected = true;
    this.ui.banner('banner.reconnecting', 'warn');
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.render();
  }

  // dropAndReconnect is for failures the socket cannot see (ICE).
  dropAndReconnect(reason) {
    if (this.phase !== 'joined' || !this.sig) return;
    this.log('reconnecting because', reason);
    this.sig.close(CLOSE_PEER_FAILED, reason);
  }

  onMessage(msg) {
    const d = msg.data || {};
    if (msg.type !== 'candidate') console.debug('[ducha] recv', msg.type);
    switch (msg.type) {
      case 'joined':
        return this.onJoined(d);
      case 'admitted':
        // The same data as joined: the call starts now.
        this.ui.toast('toast.admitted');
        return this.onJoined(d);
      case 'session-updated':
        return this.onSessionUpdated(d.session);
      case 'lobby-updated':
        return this.onLobbyUpdated(d.waiting || []);
      case 'chat':
        return this.chat.add(d, this.self ? this.self.id : '');
      case 'active-speakers':
        return this.ui.setSpeakers(d.ids || []);
      case 'layers':
        return this.peer && Array.isArray(d.active) && this.peer.setLayers(String(d.mid ?? ''), d.active);
      case 'offer':
        return this.peer && this.peer.handleOffer(d.sdp);
      case 'answer':
        return this.peer && this.peer.handleAnswer(d.sdp);
      case 'candidate':
        return this.peer && this.peer.handleCandidate(d);
      case 'participant-joined':
        return this.upsertParticipant(d.participant, true);
      case 'participant-updated':
        return this.upsertParticipant(d.participant, false);
      case 'participant-left':
        return this.removeParticipant(d.id, d.reason);
      case 'track-published':
        if (d.track) this.tracks.set(d.track.id, d.track);
        return this.render();
      case 'track-removed':
        if (d.track) {
          this.tracks.delete(d.track.id);
          this.remote.delete(d.track.id);
        }
        return this.render();
      case 'closed':
        if (FINAL_CLOSE_REASONS.has(d.reason)) return this.fatal(d.reason);
        return; // the socket close that follows decides about reconnecting
      case 'error':
        return this.onError(d);
      default:
        return; // newer servers may add types; PROTOCOL.md says to ignore them
    }
  }

  onError(d) {
    this.log('server error', d.code, d.message, d.ref);
    if (FATAL_ERROR_CODES.has(d.code) || SESSION_FATAL_CODES.has(d.code)) return this.fatal(d.code);
    if (d.code === 'forbidden') this.ui.toast('err.forbidden');
    if (d.code === 'bad_action') this.ui.toast('err.badAction');
  }

  onJoined(d) {
    this.session = d.session || null;
    if (d.lobby) return this.enterLobby(d);
    this.phase = 'joined';
    this.chat.setEnabled(true);
    this.self = d.self;
    this.setModMuted(!!d.self.modMuted); // a mute outlives a reconnect
    this.participants = new Map();
    for (const p of d.participants || []) if (p.id !== d.self.id) this.participants.set(p.id, p);
    this.tracks = new Map((d.tracks || []).map((t) => [t.id, t]));
    this.remote = new Map();
    this.slotMode = false;
    // A new connection: the server knows none of our tile sizes.
    this.sizes.reset();
    if (this.wasDisconnected) {
      this.reconnects++;
      this.ui.banner('banner.reconnected', 'ok', 3000);
    }
    if (!this.membersDefaultApplied) {
      this.membersDefaultApplied = true;
      // Supervisors run the session, so they see who is there from the start.
      this.ui.showMembers(this.self.role === 'supervisor');
    }
    this.peer = new Peer({
      iceServers: d.iceServers || [],
      signal: (type, data) => this.sig && this.sig.send(type, data),
      onTrack: (ev) => this.onRemoteTrack(ev),
      onFailed: (reason) => this.dropAndReconnect(reason),
      // Back-off restarts only once media flows: a join that keeps failing
      // to negotiate must not retry every second.
      onConnected: () => {
        this.attempt = 0;
      },
      log: (...a) => this.log(...a),
    });
    if (this.self.role === 'observer') {
      this.mediaState = 'declined';
    } else if (this.localStream) {
      this.publish();
    } else if (this.mediaState === 'none') {
      this.acquireMedia();
    }
    this.render();
  }

  // enterLobby waits for the supervisor: no PeerConnection and nothing
  // sent, but the camera opens so the official can check it meanwhile and
  // the call starts at once on `admitted`.
  enterLobby(d) {
    this.phase = 'lobby';
    this.self = d.self;
    this.participants = new Map();
    this.tracks = new Map();
    this.remote = new Map();
    this.chat.setEnabled(false);
    if (this.wasDisconnected) {
      this.wasDisconnected = false;
      this.reconnects++;
      this.ui.banner('banner.reconnected', 'ok', 3000);
    }
    if (this.self.role !== 'observer' && this.mediaState === 'none') this.acquireMedia();
    this.render();
  }

  onSessionUpdated(sess) {
    if (!sess) return;
    const prev = this.session || {};
    this.session = sess;
    if (this.phase === 'joined') {
      if (sess.status === 'live' && prev.status && prev.status !== 'live') this.ui.toast('toast.sessionLive');
      if (prev.recording !== undefined && prev.recording !== sess.recording) {
        this.ui.toast(sess.recording ? 'toast.recordingOn' : 'toast.recordingOff');
      }
      if (prev.locked !== undefined && prev.locked !== sess.locked) this.ui.toast(sess.locked ? 'toast.locked' : 'toast.unlocked');
    }
    this.render();
  }

  // onLobbyUpdated reaches supervisors only: show who waits, and open the
  // member list when someone new arrives so the chair notices.
  onLobbyUpdated(waiting) {
    const known = new Set(this.waiting.map((w) => w.id));
    const fresh = waiting.filter((w) => !known.has(w.id));
    this.waiting = waiting;
    for (const w of fresh) this.ui.toast('toast.lobby', { name: w.name || w.identity });
    if (fresh.length) this.ui.showMembers(true);
    this.render();
  }

  // setModMuted follows the supervisor's mute of this participant. While it
  // lasts the microphone is off and cannot be turned on; when lifted it
  // stays off until the official chooses to speak, so nobody is put on air
  // by surprise.
  setModMuted(on) {
    if (on === this.modMuted) return;
    this.modMuted = on;
    if (on) {
      this.ui.toast('toast.modMuted');
      if (!this.audioMuted && this.localStream) this.toggle('audio', true);
    } else {
      this.ui.toast('toast.modUnmuted');
    }
  }

  moderate(action, p) {
    if (this.phase !== 'joined' || !this.sig) return;
    const send = () => this.sig && this.sig.send('moderate', { action, target: p.id });
    if (action !== 'remove') return send();
    this.ui.dialog({
      kind: 'confirm',
      titleKey: 'mod.removeTitle',
      textKey: 'mod.removeConfirm',
      textParams: { name: p.name },
      actions: [
        { key: 'btn.cancel', onClick: () => this.ui.closeDialog() },
        {
          key: 'mod.remove',
          primary: true,
          onClick: () => {
            this.ui.closeDialog();
            send();
          },
        },
      ],
    });
  }

  upsertParticipant(p, announce) {
    if (!p) return;
    if (this.self && p.id === this.self.id) {
      this.self = { ...this.self, ...p };
      this.setModMuted(!!p.modMuted);
      return this.render();
    }
    const isNew = !this.participants.has(p.id);
    this.participants.set(p.id, p);
    if (announce && isNew) this.ui.toast('toast.joined', { name: p.name || p.identity });
    this.render();
  }

  removeParticipant(id, reason) {
    const p = this.participants.get(id);
    if (!p) return;
    this.participants.delete(id);
    for (const [tid, t] of this.tracks) {
      if (t.participantId === id) {
        this.tracks.delete(tid);
        this.remote.delete(tid);
      }
    }
    // A replaced participant is the same person back on a new connection.
    if (reason !== 'replaced') this.ui.toast('toast.left', { name: p.name || p.identity });
    this.render();
  }

  onRemoteTrack({ track, streamId, stream }) {
    if (!streamId) return;
    if (isSlotStream(streamId)) {
      // Nobody's tile: played on its own, whoever it carries now.
      this.slotMode = true;
      this.ui.slotAudio.add(streamId, track, stream);
      return this.render();
    }
    this.remote.set(streamId, track);
    // (Re)subscribed: tell its size again, the server may have forgotten it.
    this.sizes.resubscribed(streamId);
    track.addEventListener('ended', () => {
      if (this.remote.get(streamId) === track) {
        this.remote.delete(streamId);
        this.render();
      }
    });
    this.render();
  }

  // onVideoSizes maps the videos on screen (MediaStreamTracks) to server
  // track ids: the stream id of a remote track is the server's track id.
  onVideoSizes(list) {
    const ids = new Map();
    for (const [tid, track] of this.remote) ids.set(track, tid);
    const sizes = new Map();
    for (const { track, width, height } of list) {
      const tid = ids.get(track);
      if (!tid) continue;
      const prev = sizes.get(tid);
      // One video in two tiles: the larger decides.
      sizes.set(tid, prev ? { width: Math.max(prev.width, width), height: Math.max(prev.height, height) } : { width, height });
    }
    this.sizes.update(sizes);
  }

  // --- local media ---

  async acquireMedia() {
    this.mediaState = 'opening';
    this.render();
    const res = await openMedia(navigator.mediaDevices, window.isSecureContext);
    if (this.phase === 'left' || this.phase === 'error') {
      if (res.stream) for (const t of res.stream.getTracks()) t.stop();
      return;
    }
    if (res.error) {
      this.mediaState = 'none';
      this.render();
      return this.ui.dialog({
        titleKey: 'err.mediaTitle',
        textKey: res.error,
        actions: [
          {
            key: 'btn.retry',
            primary: true,
            onClick: () => {
              this.ui.closeDialog();
              this.acquireMedia();
            },
          },
          { key: 'btn.joinWithoutMedia', onClick: () => this.declineMedia() },
        ],
      });
    }
    this.localStream = res.stream;
    this.mediaState = 'open';
    this.ui.retryAudio();
    for (const t of res.stream.getAudioTracks()) t.enabled = !this.audioMuted;
    for (const t of res.stream.getVideoTracks()) t.enabled = !this.videoMuted;
    if (this.phase === 'joined') this.publish();
    this.render();
  }

  declineMedia() {
    this.ui.closeDialog();
    this.mediaState = 'declined';
    this.render();
  }

  // publish sends our tracks once the server's pending offers are through.
  // Offering while the server offers is glare, and Chromium mishandles the
  // rollback that follows (see sdp.js): the server announces each track it
  // will offer us (joined, track-published), so wait until those arrived.
  publish() {
    const peer = this.peer;
    if (!peer) return;
    this.whenSubscribed(peer).then(() => {
      if (this.peer !== peer || !this.localStream || peer.sources.size > 0) return;
      for (const t of this.localStream.getTracks()) {
        peer.addTrack(t, this.localStream, t.kind === 'audio' ? 'microphone' : 'camera');
      }
      // The server forgets mute state with the old connection.
      if (this.audioMuted && this.sig) this.sig.send('mute', { kind: 'audio', muted: true });
      if (this.videoMuted && this.sig) this.sig.send('mute', { kind: 'video', muted: true });
    });
  }

  // whenSubscribed resolves once every announced track the server will send
  // us has arrived (slots.js, awaitedTracks), or after SUBSCRIBE_WAIT_MS.
  whenSubscribed(peer) {
    const start = Date.now();
    const deadline = start + SUBSCRIBE_WAIT_MS;
    return new Promise((resolve) => {
      const check = () => {
        const roles = new Map([...this.participants.values()].map((p) => [p.id, p.role]));
        const { id: selfId, role: selfRole } = this.self;
        const awaited = awaitedTracks({ tracks: this.tracks.values(), selfId, selfRole, roles, slotMode: this.slotMode });
        const missing = awaited.filter((id) => !this.remote.has(id));
        const timedOut = Date.now() > deadline;
        if (missing.length === 0 || this.peer !== peer || timedOut) {
          if (timedOut && missing.length) this.log('publishing without tracks the server announced', missing.join(','));
          this.subscribeWait = { ms: Date.now() - start, timedOut: timedOut && missing.length > 0, missing };
          resolve();
        } else setTimeout(check, 100);
      };
      check();
    });
  }

  // toggle switches our microphone or camera; force is the supervisor's
  // mute, which is the only way to turn the microphone off while modMuted.
  toggle(kind, force = false) {
    if (!this.localStream) return;
    if (kind === 'audio' && this.modMuted && !force) return;
    const muted = kind === 'audio' ? (this.audioMuted = !this.audioMuted) : (this.videoMuted = !this.videoMuted);
    const tracks = kind === 'audio' ? this.localStream.getAudioTracks() : this.localStream.getVideoTracks();
    // enabled=false keeps the sender and its negotiation: unmuting is instant
    // and needs no new offer. The browser sends silence / black frames.
    for (const t of tracks) t.enabled = !muted;
    if (this.sig && this.phase === 'joined') this.sig.send('mute', { kind, muted });
    this.render();
  }

  // --- endings ---

  leave() {
    if (this.phase === 'left') return;
    const wasError = this.phase === 'error';
    this.phase = 'left';
    clearTimeout(this.retryTimer);
    if (this.sig) {
      this.sig.send('leave', {});
      this.sig.close(1000, 'leave');
      this.sig = null;
    }
    this.teardownPeer();
    this.stopLocal();
    this.sizes.close();
    this.ui.hideBanner();
    if (!wasError) {
      this.ui.dialog({
        kind: 'left',
        titleKey: 'left.title',
        textKey: 'left.detail',
        actions: [{ key: 'btn.rejoin', primary: true, onClick: () => window.location.reload() }],
      });
    }
    this.render();
  }

  fatal(code) {
    if (this.phase === 'left' || this.phase === 'error') return;
    this.phase = 'error';
    this.errorCode = code;
    clearTimeout(this.retryTimer);
    if (this.sig) {
      this.sig.close(1000, 'fatal');
      this.sig = null;
    }
    this.teardownPeer();
    this.stopLocal();
    this.sizes.close();
    this.chat.setEnabled(false);
    this.ui.hideBanner();
    this.ui.dialog(fatalDialog(code, () => window.location.reload()));
    this.render();
  }

  teardownPeer() {
    if (this.peer) this.peer.close();
    this.peer = null;
    this.remote = new Map();
    this.ui.slotAudio.clear();
    this.slotMode = false;
  }

  stopLocal() {
    if (this.localStream) for (const t of this.localStream.getTracks()) t.stop();
    this.localStream = null;
  }

  // --- drawing and the test hook ---

  note() {
    if (this.phase === 'connecting' || this.phase === 'starting') return 'status.connecting';
    if (this.phase !== 'joined') return '';
    if (this.mediaState === 'opening') return 'status.media';
    if (this.self && this.self.role === 'observer') return 'status.observer';
    if (this.mediaState === 'declined') return 'status.noMedia';
    if (this.participants.size === 0) return 'status.waiting';
    return '';
  }

  // render draws the call soon, once for a burst of changes. Joining a
  // province-wide session brings a burst of messages (joined, then a track
  // and a participant change after another), and drawing 100 tiles for each
  // kept the page from reading the server's offer for 200-270 ms (p50, a
  // county joining a 1+100 room on the test machine). A frame, or 100 ms
  // where there are no frames (a hidden tab), batches them.
  render() {
    if (this.renderTimer !== undefined) return;
    const run = () => {
      cancelAnimationFrame(this.renderFrame);
      clearTimeout(this.renderTimer);
      this.renderTimer = undefined;
      this.renderNow();
    };
    this.renderFrame = requestAnimationFrame(run);
    this.renderTimer = setTimeout(run, 100);
  }

  renderNow() {
    const media = tileMedia(this.remote, this.tracks, this.slotMode);
    const active = this.phase !== 'left' && this.phase !== 'error';
    const chair = !!this.self && this.self.role === 'supervisor';
    this.ui.render({
      room: this.room,
      session: active ? this.session : null,
      lobby: this.phase === 'lobby',
      waiting: active && chair ? this.waiting : [],
      self: active ? this.self : null,
      participants: active ? [...this.participants.values()] : [],
      media,
      note: this.note(),
      local: {
        stream: this.localStream,
        sending: !!this.localStream,
        hasAudio: !!this.localStream && this.localStream.getAudioTracks().length > 0,
        hasVideo: !!this.localStream && this.localStream.getVideoTracks().length > 0,
        audioMuted: this.audioMuted,
        videoMuted: this.videoMuted,
        modMuted: this.modMuted,
      },
    });
  }

  debugHook() {
    const copy = (o) => (o ? JSON.parse(JSON.stringify(o)) : null);
    return Object.freeze({
      state: () => ({
        phase: this.phase,
        errorCode: this.errorCode,
        room: this.room,
        self: copy(this.self),
        media: this.mediaState,
        audioMuted: this.audioMuted,
        videoMuted: this.videoMuted,
        reconnects: this.reconnects,
        lang: this.i18n.lang(),
        session: copy(this.session),
        modMuted: this.modMuted,
        waiting: copy(this.waiting),
        slotMode: this.slotMode,
        // How the wait for the server's tracks before publishing ended.
        subscribeWait: copy(this.subscribeWait),
      }),
      pc: () => (this.peer ? this.peer.pc : null),
      participants: () => copy([...this.participants.values()]),
      tracks: () => [...this.tracks.values()].map((t) => ({ ...t, received: this.remote.has(t.id) })),
      // The video-size the server was last told per track id.
      videoSizes: () => this.sizes.lastSent(),
      // Our simulcast layers per media section: mid -> {rid: active}.
      layers: () => (this.peer ? this.peer.layers() : {}),
      // The speaker slots played (large rooms): [{id, track, readyState,
      // muted, paused, attached}].
      slots: () => this.ui.slotAudio.snapshot(),
    });
  }
}

const call = new Call(parseLink(window.location), createI18n());
Object.defineProperty(window, '__ducha', { value: call.debugHook(), writable: false, configurable: false });
call.start();
