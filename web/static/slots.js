// Speaker slots (PROTOCOL.md, "Large rooms"). A client that joins a room of
// more than the server's --large-room participants does not receive one
// audio track per participant: it receives a few slot tracks (msid stream and
// track id "speaker-0", "speaker-1", ...) on which the server puts whoever
// speaks now. A slot belongs to nobody's tile, so the page plays every slot
// on its own <audio> element, and learns who speaks from `active-speakers`.

const SLOT_STREAM = /^speaker-\d+$/;

// isSlotStream says whether a remote track's stream id names a speaker slot.
// Server track ids start with "T", so a slot can never be taken for a
// participant's track nor the other way round.
export function isSlotStream(id) {
  return typeof id === 'string' && SLOT_STREAM.test(id);
}

// awaitedTracks returns the ids of the announced tracks the server is going
// to send us, which the page waits for before it offers its own (main.js,
// whenSubscribed). Receiving speaker slots (slotMode) means the room was
// large when we joined, and then the server sends us no participant's audio
// (the slots carry it) and, if we are a county, no other county's video
// (PROTOCOL.md, `active-speakers`). Waiting for those would hold our camera
// back until the deadline on every join. A track of a participant we do not
// know yet is awaited: the deadline bounds that wait.
//
// tracks: iterable of Track (PROTOCOL.md); roles: Map participant id -> role.
export function awaitedTracks({ tracks, selfId, selfRole, roles, slotMode }) {
  const out = [];
  for (const t of tracks) {
    if (t.participantId === selfId) continue;
    if (slotMode && t.kind === 'audio') continue;
    if (slotMode && t.kind === 'video' && selfRole === 'county' && roles.get(t.participantId) === 'county') continue;
    out.push(t.id);
  }
  return out;
}

// tileMedia groups the received tracks by participant for the tiles:
// Map participant id -> {camera, microphone, screen: MediaStreamTrack}, from
// remote (server track id -> MediaStreamTrack) and tracks (server track id ->
// Track). A track whose track-published has not arrived yet is left out; it
// is drawn when it does. In slotMode a participant's microphone is heard on
// the speaker slots, so slotAudio: true marks those who publish one (their
// tile must not show them muted).
export function tileMedia(remote, tracks, slotMode) {
  const media = new Map();
  const entry = (pid) => {
    if (!media.has(pid)) media.set(pid, {});
    return media.get(pid);
  };
  for (const [tid, track] of remote) {
    const info = tracks.get(tid);
    if (info) entry(info.participantId)[info.source || (info.kind === 'audio' ? 'microphone' : 'camera')] = track;
  }
  if (slotMode) {
    for (const info of tracks.values()) if (info.kind === 'audio') entry(info.participantId).slotAudio = true;
  }
  return media;
}

// SlotAudio plays the speaker slots: one hidden <audio autoplay> per slot in
// container, kept across the page's re-renders (the tiles are redrawn from
// snapshots; these elements are not part of them), removed when the slot's
// track ends or the connection goes. onBlocked() is called when the browser
// refuses to play without a user gesture; the page then shows its "click to
// hear" banner, whose click calls play() on every <audio> again (ui.js).
export class SlotAudio {
  constructor(doc, container, { onBlocked = () => {}, newStream = (tracks) => new MediaStream(tracks) } = {}) {
    this.doc = doc;
    this.container = container;
    this.onBlocked = onBlocked;
    this.newStream = newStream;
    this.slots = new Map(); // slot id -> {track, audio}
  }

  // add plays track as slot id (its stream id). A slot that comes again with
  // another track (a new connection) replaces the old element's source.
  // stream, when given, is watched for the track's removal: a track the
  // remote side removes need not fire 'ended'.
  add(id, track, stream = null) {
    const cur = this.slots.get(id);
    if (cur && cur.track === track) return;
    let audio = cur && cur.audio;
    if (!audio) {
      audio = this.doc.createElement('audio');
      audio.autoplay = true;
      audio.dataset.slot = id;
      this.container.append(audio);
    }
    audio.dataset.track = track.id;
    audio.srcObject = this.newStream([track]);
    this.slots.set(id, { track, audio });
    const gone = () => this.remove(id, track);
    track.addEventListener('ended', gone, { once: true });
    if (stream) {
      stream.addEventListener('removetrack', (ev) => {
        if (ev.track === track) gone();
      });
    }
    const played = audio.play();
    if (played && played.catch) {
      played.catch((err) => {
        if (err && err.name === 'NotAllowedError') this.onBlocked();
      });
    }
  }

  // remove drops slot id, if it still plays track (when given).
  remove(id, track = null) {
    const cur = this.slots.get(id);
    if (!cur || (track && cur.track !== track)) return;
    cur.audio.srcObject = null;
    cur.audio.remove();
    this.slots.delete(id);
  }

  // clear drops every slot: the connection that carried them is gone.
  clear() {
    for (const id of [...this.slots.keys()]) this.remove(id);
  }

  // elements returns the <audio> elements, for retrying play() after a click.
  elements() {
    return [...this.slots.values()].map((s) => s.audio);
  }

  // snapshot describes the slots for the page's test hook.
  snapshot() {
    return [...this.slots.entries()]
      .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
      .map(([id, { track, audio }]) => ({
        id,
        track: track.id,
        readyState: track.readyState,
        muted: track.muted,
        paused: audio.paused,
        attached: audio.isConnected,
      }));
  }
}
