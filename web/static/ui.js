// The call page's DOM: tiles, member list, toolbar, banners and dialogs. It
// holds no call state of its own; main.js hands it a snapshot to draw.
// Names are always set with textContent: they come from other people.

import { icon } from './icons.js';
import { displayedSize } from './simulcast.js';
import { SlotAudio } from './slots.js';

const ROLE_KEYS = { supervisor: 'role.supervisor', county: 'role.county', observer: 'role.observer' };

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function initial(name) {
  const s = (name || '').trim();
  return s ? Array.from(s)[0].toUpperCase() : '?';
}

const TILE_GAP = 10;
const TILE_RATIO = 16 / 9; // the cameras we ask for are 1280x720

// bestGrid picks the column count that makes n tiles of a fixed aspect
// ratio as large as possible inside a w x h box, like a meeting gallery.
export function bestGrid(n, w, h, gap = TILE_GAP, ratio = TILE_RATIO) {
  let best = { cols: 1, rows: 1, tileW: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(Math.max(1, n) / cols);
    const tileW = Math.min((w - gap * (cols - 1)) / cols, ((h - gap * (rows - 1)) / rows) * ratio);
    if (tileW > best.tileW) best = { cols, rows, tileW };
  }
  return best;
}

// setStream points a media element at exactly the given tracks, touching
// srcObject only when they change so playback does not restart.
function setStream(media, tracks, onPlayBlocked) {
  const ids = tracks.map((t) => t.id).join(',');
  if (media.dataset.tracks === ids) return;
  media.dataset.tracks = ids;
  media.srcObject = tracks.length ? new MediaStream(tracks) : null;
  if (tracks.length) {
    media.play().catch((err) => {
      if (err && err.name === 'NotAllowedError') onPlayBlocked();
    });
  }
}

export class UI {
  constructor(doc, i18n, handlers) {
    this.doc = doc;
    this.i18n = i18n;
    // onMic, onCam, onLeave, onModerate(action, {id, name}), and
    // onVideoSizes([{track, width, height}]): every remote video on screen,
    // in device pixels, whenever one of them changes size.
    this.handlers = handlers;
    this.stage = null; // the tile area's size, from a ResizeObserver ({width, height})
    this.$ = (id) => doc.getElementById(id);
    this.tiles = new Map(); // tile key -> element
    this.tileSpec = new WeakMap(); // tile element -> the spec it shows
    this.speakers = new Set(); // participant ids speaking now
    this.last = null;
    this.bannerTimer = null;
    this.membersShown = false;
    this.audioBlocked = false;
    // Speaker slots of a large room: played apart from the tiles.
    this.slotAudio = new SlotAudio(doc, this.$('speaker-slots'), { onBlocked: () => this.setAudioBlocked(true) });

    this.$('btn-mic').prepend(icon('mic'));
    this.$('btn-cam').prepend(icon('camera'));
    this.$('btn-members').prepend(icon('people'));
    this.$('btn-leave').prepend(icon('leave'));
    this.$('btn-members-close').append(icon('close'));
    this.$('btn-mic').addEventListener('click', () => handlers.onMic());
    this.$('btn-cam').addEventListener('click', () => handlers.onCam());
    this.$('btn-leave').addEventListener('click', () => handlers.onLeave());
    this.$('btn-members').addEventListener('click', () => this.showMembers(!this.membersShown));
    this.$('btn-members-close').addEventListener('click', () => this.showMembers(false));
    this.$('btn-lang').addEventListener('click', () => i18n.toggle());
    // Supervisor buttons in the member and lobby lists (drawn only for
    // supervisors; the server checks the role again).
    for (const list of ['member-list', 'lobby-list']) {
      this.$(list).addEventListener('click', (ev) => {
        const b = ev.target.closest('button[data-action]');
        const li = b && b.closest('li[data-participant-id]');
        if (li) handlers.onModerate(b.dataset.action, { id: li.dataset.participantId, name: li.dataset.name || '' });
      });
    }
    this.$('banner').addEventListener('click', () => {
      if (this.audioBlocked) this.retryAudio();
    });
    i18n.onChange(() => {
      if (this.last) this.render(this.last);
      this.retranslateDialog();
      const b = this.$('banner');
      if (!b.hidden && b.dataset.key) b.textContent = this.t(b.dataset.key);
    });
    i18n.apply();
    // The grid depends on the stage size, which changes with the window and
    // when the member list opens or closes.
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1].contentRect;
      this.stage = { width: r.width, height: r.height };
      this.layout();
    }).observe(this.$('tiles'));
    // How large each remote video shows decides the simulcast layer the
    // server sends us (video-size); the tiles change size with the grid.
    this.videoObserver = new ResizeObserver(() => this.reportVideoSizes());
  }

  t(key, params) {
    return this.i18n.t(key, params);
  }

  showMembers(open) {
    this.membersShown = open;
    this.$('members').hidden = !open;
    this.$('btn-members').classList.toggle('active', open);
    this.$('btn-members').setAttribute('aria-expanded', String(open));
  }

  // render draws a snapshot: {room, self, participants: [P], media: Map(pid ->
  // {camera, microphone, screen, slotAudio: heard on a speaker slot}), local: {stream, audioMuted, videoMuted,
  // modMuted, sending}, note, session (null in ad-hoc rooms), lobby (we wait
  // in it), waiting (the lobby, for supervisors)}.
  render(s) {
    this.last = s;
    this.renderSession(s);
    this.renderToolbar(s);
    this.renderTiles(s);
    this.renderMembers(s);
    this.renderLobbyList(s);
    const note = this.$('stage-note');
    note.textContent = s.note ? this.t(s.note) : '';
    note.hidden = !s.note;
  }

  // renderSession draws what a supervision session adds: its title, the
  // red recording dot, the lobby card and the supervisor's mute.
  renderSession(s) {
    const sess = s.session;
    let label = s.room ? this.t('room.label', { room: s.room }) : '';
    if (sess && sess.title) {
      label = sess.caseNumber
        ? this.t('room.sessionCase', { title: sess.title, case: sess.caseNumber })
        : this.t('room.session', { title: sess.title });
    }
    this.$('room-label').textContent = label;
    const open = !!sess && sess.status !== 'ended' && sess.status !== 'cancelled' && !!s.self;
    this.$('rec-indicator').hidden = !(open && sess.recording);
    this.$('lobby').hidden = !s.lobby;
    if (s.lobby) {
      this.$('lobby-title').textContent = sess ? sess.title : '';
      const c = this.$('lobby-case');
      c.textContent = sess && sess.caseNumber ? this.t('lobby.case', { case: sess.caseNumber }) : '';
      c.hidden = !c.textContent;
    }
    this.$('mod-muted').hidden = !s.local.modMuted || !s.self;
  }

  renderToolbar(s) {
    const mic = this.$('btn-mic');
    const cam = this.$('btn-cam');
    const canSend = s.local.sending;
    mic.hidden = !canSend || !s.local.hasAudio;
    cam.hidden = !canSend || !s.local.hasVideo;
    // Muted by the supervisor: no unmute until it is lifted (PROTOCOL.md).
    mic.disabled = !!s.local.modMuted;
    mic.title = s.local.modMuted ? this.t('mod.muted') : '';
    mic.querySelector('.label').textContent = this.t(s.local.audioMuted ? 'btn.unmute' : 'btn.mute');
    cam.querySelector('.label').textContent = this.t(s.local.videoMuted ? 'btn.videoOn' : 'btn.videoOff');
    mic.classList.toggle('off', s.local.audioMuted);
    cam.classList.toggle('off', s.local.videoMuted);
    mic.setAttribute('aria-pressed', String(s.local.audioMuted));
    cam.setAttribute('aria-pressed', String(s.local.videoMuted));
    mic.querySelector('svg').replaceWith(icon('mic', { crossed: s.local.audioMuted }));
    cam.querySelector('svg').replaceWith(icon('camera', { crossed: s.local.videoMuted }));
    const count = (s.self ? 1 : 0) + s.participants.length;
    this.$('members-count').textContent = count ? String(count) : '';
  }

  tileSpecs(s) {
    const specs = [];
    if (s.self) {
      const videoTracks = s.local.stream ? s.local.stream.getVideoTracks() : [];
      specs.push({
        key: `self:${s.self.id}`,
        pid: s.self.id,
        local: true,
        name: this.t('me'),
        role: s.self.role,
        audioMuted: s.local.sending ? s.local.audioMuted || !!s.local.modMuted : true,
        videoMuted: s.local.videoMuted || videoTracks.length === 0,
        video: videoTracks[0] || null,
        audio: null,
      });
    }
    for (const p of s.participants) {
      const m = s.media.get(p.id) || {};
      specs.push({
        key: `cam:${p.id}`,
        pid: p.id,
        local: false,
        name: p.name || p.identity || this.t('role.unknown'),
        role: p.role,
        // In a large room the microphone is heard on a speaker slot
        // (slotAudio), never on the tile.
        audioMuted: !!p.audioMuted || !!p.modMuted || !(m.microphone || m.slotAudio),
        videoMuted: !!p.videoMuted || !m.camera,
        video: m.camera || null,
        audio: m.microphone || null,
      });
      if (m.screen) {
        specs.push({
          key: `screen:${p.id}`,
          pid: p.id,
          screen: true,
          name: this.t('tile.screen', { name: p.name || p.identity }),
          role: p.role,
          audioMuted: false,
          videoMuted: false,
          video: m.screen,
          audio: null,
        });
      }
    }
    return specs;
  }

  renderTiles(s) {
    const container = this.$('tiles');
    const specs = this.tileSpecs(s);
    const keep = new Set(specs.map((x) => x.key));
    for (const [key, tile] of this.tiles) {
      if (!keep.has(key)) {
        for (const m of tile.querySelectorAll('video, audio')) m.srcObject = null;
        this.videoObserver.unobserve(tile.querySelector('video'));
        tile.remove();
        this.tiles.delete(key);
      }
    }
    specs.forEach((spec, i) => {
      let tile = this.tiles.get(spec.key);
      if (!tile) {
        tile = this.makeTile(spec);
        this.tiles.set(spec.key, tile);
      }
      this.updateTile(tile, spec);
      if (container.children[i] !== tile) container.insertBefore(tile, container.children[i] || null);
    });
    this.layout();
    this.reportVideoSizes();
  }

  // reportVideoSizes tells the handler the size of every remote video on
  // screen: the picture's own size inside the tile (object-fit: contain),
  // in device pixels, and 0x0 where the tile shows no video.
  reportVideoSizes() {
    if (!this.handlers.onVideoSizes) return;
    const dpr = (this.doc.defaultView && this.doc.defaultView.devicePixelRatio) || 1;
    const out = [];
    for (const tile of this.tiles.values()) {
      const spec = this.tileSpec.get(tile);
      if (!spec || spec.local || !spec.video) continue;
      const video = tile.querySelector('video');
      const shown = !spec.videoMuted && tile.isConnected && tile.getClientRects().length > 0;
      const size = shown
        ? displayedSize(video.clientWidth, video.clientHeight, video.videoWidth, video.videoHeight, dpr)
        : { width: 0, height: 0 };
      out.push({ track: spec.video, ...size });
    }
    this.handlers.onVideoSizes(out);
  }

  layout() {
    const container = this.$('tiles');
    // The stage's size as the ResizeObserver last saw it: reading
    // clientWidth here would make the browser lay the page out there and
    // then, on every render, a hundred tiles of it in a province-wide
    // session.
    const { width, height } = this.stage || { width: container.clientWidth, height: container.clientHeight };
    const g = bestGrid(this.tiles.size, width, height);
    const tileW = Math.max(0, Math.floor(g.tileW));
    container.style.setProperty('--cols', String(g.cols));
    container.style.setProperty('--tile-w', `${tileW}px`);
    container.style.setProperty('--tile-h', `${Math.floor(tileW / TILE_RATIO)}px`);
  }

  makeTile(spec) {
    const tile = el('div', 'tile');
    tile.dataset.participantId = spec.pid;
    tile.classList.toggle('local', !!spec.local);
    tile.classList.toggle('screen', !!spec.screen);
    const video = el('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // sound goes through the <audio> below, so video autoplay is never blocked
    if (!spec.local) {
      this.videoObserver.observe(video);
      // The picture's shape is known only once frames arrive ('resize').
      video.addEventListener('resize', () => this.reportVideoSizes());
    }
    const audio = el('audio');
    audio.autoplay = true;
    const avatar = el('div', 'avatar');
    avatar.append(el('span', 'avatar-letter'));
    const plate = el('div', 'nameplate');
    const muted = el('span', 'muted-badge');
    muted.append(icon('mic', { crossed: true }), el('span', 'muted-text'));
    plate.append(muted, el('span', 'name'), el('span', 'role'));
    tile.append(video, audio, avatar, plate);
    return tile;
  }

  updateTile(tile, spec) {
    this.tileSpec.set(tile, spec);
    tile.classList.toggle('speaking', !spec.screen && this.speakers.has(spec.pid));
    tile.dataset.audioMuted = String(spec.audioMuted);
    tile.dataset.videoMuted = String(spec.videoMuted);
    tile.querySelector('.name').textContent = spec.name;
    tile.querySelector('.role').textContent = spec.screen ? '' : this.t(ROLE_KEYS[spec.role] || 'role.unknown');
    tile.querySelector('.avatar-letter').textContent = spec.local ? this.t('me') : initial(spec.name);
    const badge = tile.querySelector('.muted-badge');
    // Observers never have a microphone; "muted" would suggest they could speak.
    badge.hidden = !spec.audioMuted || !!spec.screen || spec.role === 'observer';
    badge.querySelector('.muted-text').textContent = this.t('tile.muted');
    const showVideo = !!spec.video && !spec.videoMuted;
    tile.classList.toggle('no-video', !showVideo);
    const onBlocked = () => this.setAudioBlocked(true);
    setStream(tile.querySelector('video'), spec.video ? [spec.video] : [], onBlocked);
    setStream(tile.querySelector('audio'), spec.audio ? [spec.audio] : [], onBlocked);
  }

  renderMembers(s) {
    const list = this.$('member-list');
    const people = s.self ? [{ ...s.self, me: true }, ...s.participants] : [...s.participants];
    this.$('members-title').textContent = this.t('members.title', { n: people.length });
    list.replaceChildren();
    const chair = !!s.self && s.self.role === 'supervisor' && !!s.session;
    for (const p of people) {
      const li = el('li', 'member');
      li.dataset.participantId = p.id;
      li.dataset.name = p.name || p.identity || '';
      const audioMuted = p.me ? !s.local.sending || s.local.audioMuted || !!s.local.modMuted : !!p.audioMuted || !!p.modMuted;
      const videoMuted = p.me ? !s.local.sending || s.local.videoMuted : !!p.videoMuted;
      const name = el('span', 'member-name', (p.name || p.identity || '') + (p.me ? this.t('members.me') : ''));
      const role = el('span', `role-chip role-${p.role}`, this.t(ROLE_KEYS[p.role] || 'role.unknown'));
      const state = el('span', 'member-state');
      if (p.role !== 'observer') {
        const mic = icon('mic', { crossed: audioMuted });
        mic.setAttribute('aria-label', this.t(audioMuted ? 'tile.muted' : 'members.micOn'));
        state.append(mic);
        if (videoMuted) state.append(icon('camera', { crossed: true }));
      }
      li.append(el('span', 'member-avatar', initial(p.name || p.identity)), name, role, state);
      if (p.modMuted && !p.me) li.append(el('span', 'mod-chip', this.t('mod.mutedChip')));
      if (chair && !p.me && p.role !== 'supervisor') li.append(this.moderationButtons(p));
      list.append(li);
    }
  }

  moderationButtons(p) {
    const box = el('span', 'member-actions');
    const mute = el('button', 'btn small', this.t(p.modMuted ? 'mod.unmute' : 'mod.mute'));
    mute.type = 'button';
    mute.dataset.action = p.modMuted ? 'unmute' : 'mute';
    const remove = el('button', 'btn small danger', this.t('mod.remove'));
    remove.type = 'button';
    remove.dataset.action = 'remove';
    box.append(mute, remove);
    return box;
  }

  // renderLobbyList shows supervisors who waits in the lobby, with 准入.
  renderLobbyList(s) {
    const waiting = s.waiting || [];
    const section = this.$('lobby-section');
    section.hidden = waiting.length === 0;
    this.$('lobby-list-title').textContent = this.t('lobby.listTitle', { n: waiting.length });
    const list = this.$('lobby-list');
    list.replaceChildren();
    for (const w of waiting) {
      const li = el('li', 'member waiting');
      li.dataset.participantId = w.id;
      li.dataset.name = w.name || w.identity || '';
      const admit = el('button', 'btn small primary', this.t('lobby.admit'));
      admit.type = 'button';
      admit.dataset.action = 'admit';
      li.append(el('span', 'member-avatar', initial(w.name || w.identity)), el('span', 'member-name', w.name || w.identity || ''), admit);
      list.append(li);
    }
  }

  // banner shows a strip at the top: tone is "warn", "ok" or "info";
  // autoHideMs hides it again.
  banner(key, tone = 'warn', autoHideMs = 0) {
    const b = this.$('banner');
    clearTimeout(this.bannerTimer);
    b.textContent = this.t(key);
    b.dataset.key = key;
    b.className = `banner ${tone}`;
    b.hidden = false;
    if (autoHideMs) this.bannerTimer = setTimeout(() => this.hideBanner(key), autoHideMs);
  }

  hideBanner(key) {
    const b = this.$('banner');
    if (key && b.dataset.key !== key) return;
    b.hidden = true;
    b.dataset.key = '';
  }

  setAudioBlocked(blocked) {
    if (this.audioBlocked === blocked) return;
    this.audioBlocked = blocked;
    if (blocked) this.banner('banner.audioBlocked', 'info');
    else this.hideBanner('banner.audioBlocked');
  }

  // retryAudio starts every remote <audio> again (tiles and speaker slots);
  // the banner goes away only if the browser now allows it. Called on a
  // click, and when our camera opens (Chromium allows sound while a page
  // captures).
  async retryAudio() {
    if (!this.audioBlocked) return;
    const audios = [...this.doc.querySelectorAll('.tile audio'), ...this.slotAudio.elements()];
    const results = await Promise.allSettled(audios.filter((a) => a.srcObject).map((a) => a.play()));
    if (results.every((r) => r.status === 'fulfilled')) this.setAudioBlocked(false);
  }

  // dialog covers the page with a message and buttons:
  // actions = [{key, onClick, primary}].
  dialog({ titleKey, textKey, textParams, detailKey, actions = [], kind = 'error' }) {
    const o = this.$('overlay');
    o.dataset.kind = kind;
    o.dataset.textKey = textKey || '';
    this.$('overlay-title').textContent = titleKey ? this.t(titleKey) : '';
    this.$('overlay-text').textContent = textKey ? this.t(textKey, textParams) : '';
    const detail = this.$('overlay-detail');
    detail.textContent = detailKey ? this.t(detailKey) : '';
    detail.hidden = !detailKey;
    const box = this.$('overlay-actions');
    box.replaceChildren();
    for (const a of actions) {
      const b = el('button', a.primary ? 'btn primary' : 'btn', this.t(a.key));
      b.dataset.action = a.key;
      b.addEventListener('click', a.onClick);
      box.append(b);
    }
    o.hidden = false;
    // Re-translate the open dialog when the language is switched.
    this.dialogSpec = { titleKey, textKey, textParams, detailKey, actions, kind };
    const first = box.querySelector('button.primary') || box.querySelector('button');
    if (first) first.focus();
  }

  closeDialog() {
    this.$('overlay').hidden = true;
    this.dialogSpec = null;
  }

  retranslateDialog() {
    if (this.dialogSpec) this.dialog(this.dialogSpec);
  }

  // setSpeakers outlines the tiles of the participants speaking now (camera
  // tiles, ours included; not a shared screen). Kept for tiles drawn later.
  setSpeakers(ids) {
    this.speakers = new Set(ids);
    for (const tile of this.tiles.values()) {
      const spec = this.tileSpec.get(tile);
      tile.classList.toggle('speaking', !!spec && !spec.screen && this.speakers.has(spec.pid));
    }
  }

  toast(key, params) {
    const box = this.$('toasts');
    const t = el('div', 'toast', this.t(key, params));
    box.append(t);
    setTimeout(() => t.remove(), 3500);
    while (box.children.length > 4) box.firstChild.remove();
  }
}
