// The synchronized replay: one <video> per participant source, all driven
// by one timeline clock (the session's server time). Each tick puts every
// tile where the clock says: it loads the segment that covers the clock,
// seeks when a tile is far off, nudges its speed when it is slightly off,
// and holds the clock while a needed tile is not ready, so no tile runs
// away from the others.

import { h, replace } from './dom.js';
import { TimelineClock } from './clock.js';
import { correction, formatOffset, inSpans, localSeconds, nextSegment, ready, segmentAt, tilesOf } from './sync.js';
import { clockTime, dateTime, duration } from './format.js';
import { errorText } from './api.js';
import { mountIntegrity } from './integrity.js';

export const SPEEDS = [1, 1.5, 2];
const TICK_MS = 25;
// The next segment starts loading this long before the current one ends.
const PRELOAD_MS = 5000;
// A playing tile whose position has not moved for this long is stalled.
const STALL_MS = 120;

export function eventLabel(ev, t) {
  const key = `ev.${ev.type}`;
  const label = t(key);
  return label === key ? ev.type : label;
}

function sourceLabel(source, t) {
  if (source === 'camera') return t('pl.camera');
  if (source === 'screen') return t('pl.screen');
  return source;
}

export function mountPlayer(ctx, root, id, onBack) {
  const { t, api, i18n } = ctx;
  let detail = null;
  let clock = null;
  let tiles = [];
  let timer = 0;
  let integrity = null;
  let destroyed = false;
  const els = {};

  replace(root, h('p', { class: 'muted' }, t('app.loading')));
  api.detail(id).then((d) => {
    if (destroyed) return;
    detail = d;
    build();
  }).catch((err) => {
    if (destroyed) return;
    replace(root, h('div', { class: 'card' },
      h('p', { id: 'player-error', class: 'form-error' }, errorText(err, t)),
      h('button', { class: 'btn', type: 'button', on: { click: onBack } }, t('app.back'))));
  });

  function unitName(code) {
    const u = (detail.recording.units || []).find((x) => x.code === code);
    return (u && u.name) || code || '';
  }

  function build() {
    clock = new TimelineClock(detail.timeline.durationMs);
    tiles = tilesOf(detail).map((tile) => {
      // Two players per tile: one shows the current segment, the other
      // loads the next one ahead of the boundary, so a segment switch
      // does not stop anyone.
      const vids = [0, 1].map((slot) => h('video', { playsinline: true, preload: 'auto', 'data-key': tile.key,
        'data-slot': String(slot), class: slot === 0 ? '' : 'standby' }));
      const name = h('span', { class: 'name' });
      const placeholder = h('div', { class: 'placeholder' });
      const el = h('div', { class: 'tile', 'data-key': tile.key, 'data-participant': tile.participant.id, hidden: true },
        vids, placeholder, h('div', { class: 'label' }, name));
      const out = {
        ...tile, vids, el, name, placeholder, cur: 0, loaded: [null, null], segStart: 0, active: false, failed: false,
        startFrom: null, waits: 0, lastTime: 0, lastAt: 0, stalls: 0,
        get video() { return this.vids[this.cur]; },
      };
      vids.forEach((v, slot) => {
        v.addEventListener('error', () => {
          if (slot === out.cur) out.failed = true;
          else out.loaded[slot] = null;
        });
        v.addEventListener('waiting', () => { out.waits++; });
      });
      return out;
    });

    els.title = h('h1', { id: 'rec-title' });
    els.meta = h('p', { class: 'muted', id: 'rec-meta' });
    els.back = h('button', { id: 'btn-back', class: 'btn small ghost', type: 'button', on: { click: onBack } });
    els.export = h('a', { id: 'btn-export', class: 'btn primary', href: api.exportURL(id), download: '' });
    els.integrity = h('section', { id: 'integrity', class: 'integrity' });
    els.grid = h('div', { id: 'tiles', class: `tiles n${Math.min(tiles.length, 9)}` }, tiles.map((x) => x.el));
    els.play = h('button', { id: 'btn-play', class: 'btn primary', type: 'button', on: { click: togglePlay } });
    els.time = h('span', { id: 'time', class: 'time' });
    els.speeds = SPEEDS.map((r) => h('button', { class: 'btn small speed', type: 'button', 'data-rate': String(r), on: { click: () => setRate(r) } }, `${r}x`));
    els.speedLabel = h('span', { class: 'muted' });
    els.fill = h('div', { class: 'fill' });
    els.head = h('div', { class: 'head' });
    els.markers = h('div', { class: 'markers' });
    els.bar = h('div', { id: 'timeline', class: 'bar', role: 'slider', tabindex: '0', 'aria-valuemin': '0',
      'aria-valuemax': String(detail.timeline.durationMs), on: { click: onBarClick, keydown: onBarKey } },
    els.fill, els.markers, els.head);
    els.events = h('ol', { id: 'events', class: 'events' });
    els.eventsTitle = h('h2');
    els.people = h('ul', { id: 'attendance', class: 'people' });
    els.peopleTitle = h('h2');

    for (const g of detail.gaps || []) {
      const m = h('span', { class: 'gap' });
      m.style.left = `${pct(g.startMs)}%`;
      m.style.width = `${Math.max(0.3, pct(g.endMs) - pct(g.startMs))}%`;
      els.markers.append(m);
    }
    els.eventItems = (detail.events || []).map((ev, i) => {
      const item = h('li', {}, h('button', { class: 'event', type: 'button', 'data-index': String(i), 'data-type': ev.type,
        'data-offset-ms': String(ev.offsetMs), on: { click: () => seek(ev.offsetMs) } }));
      const marker = h('span', { class: `marker t-${ev.type}`, 'data-index': String(i) });
      marker.style.left = `${pct(ev.offsetMs)}%`;
      els.markers.append(marker);
      return { ev, item, marker };
    });

    replace(root,
      h('div', { class: 'player-top' }, els.back, h('div', { class: 'grow' }, els.title, els.meta), els.export),
      els.integrity,
      h('div', { class: 'player' },
        h('div', { class: 'stage' }, els.grid,
          h('div', { class: 'controls' }, els.play, els.time, h('span', { class: 'speeds' }, els.speedLabel, els.speeds)),
          els.bar),
        h('aside', { class: 'side' }, els.eventsTitle, els.events, els.peopleTitle, els.people)));
    integrity = mountIntegrity(ctx, els.integrity, id);
    draw();
    drawText();
    timer = setInterval(tick, TICK_MS);
    tick();
    exposeHook();
  }

  function pct(ms) {
    const d = detail.timeline.durationMs;
    return d > 0 ? Math.min(100, Math.max(0, (ms / d) * 100)) : 0;
  }

  function drawText() {
    const rec = detail.recording;
    const locale = i18n.locale();
    els.title.textContent = rec.title;
    els.meta.textContent = [rec.caseNumber, rec.supervisorName, dateTime(rec.start, locale),
      duration((detail.timeline.durationMs || 0) / 1000, i18n.lang()), t('pl.recording', { id: rec.id })].filter(Boolean).join(' · ');
    els.back.textContent = `← ${t('app.back')}`;
    els.export.textContent = t('pl.export');
    els.export.title = t('pl.exportHint');
    els.speedLabel.textContent = t('pl.speed');
    els.bar.title = t('pl.timeline');
    els.eventsTitle.textContent = t('pl.events');
    els.peopleTitle.textContent = t('pl.attendance');
    for (const tile of tiles) {
      const p = tile.participant;
      const unit = p.role === 'county' && p.unit && unitName(p.unit) !== p.name ? ` · ${unitName(p.unit)}` : '';
      tile.name.textContent = `${p.name}${unit}${tile.source !== 'camera' ? ` · ${sourceLabel(tile.source, t)}` : ''}`;
      tile.placeholder.textContent = t('pl.noVideo');
    }
    for (const { ev, item, marker } of els.eventItems) {
      const btn = item.firstChild;
      const who = ev.subjectName || ev.actorName || '';
      const text = ev.type === 'chat' && ev.data && ev.data.text ? `：${ev.data.text}` : '';
      replace(btn,
        h('span', { class: 'at' }, ev.outside ? clockTime(ev.time, locale) : formatOffset(ev.offsetMs)),
        h('span', { class: 'what' }, eventLabel(ev, t)),
        who ? h('span', { class: 'who' }, ev.type === 'chat' ? ev.actorName || who : who) : null,
        text ? h('span', { class: 'text' }, text) : null,
        ev.outside ? h('span', { class: 'muted' }, ` (${t('pl.outside')})`) : null);
      marker.title = `${formatOffset(ev.offsetMs)} ${eventLabel(ev, t)} ${who}`;
    }
    if (!els.eventItems.length) replace(els.events, h('li', { class: 'muted' }, t('pl.noEvents')));
    else replace(els.events, els.eventItems.map((x) => x.item));
    replace(els.people, (detail.participants || []).map((p) => h('li', { 'data-participant': p.id },
      h('strong', {}, p.name), ' ', h('span', { class: 'muted' }, t(`role.${p.role}`) === `role.${p.role}` ? p.role : t(`role.${p.role}`)),
      p.unit ? h('span', { class: 'muted' }, ` · ${unitName(p.unit)}`) : null,
      h('div', { class: 'muted small' }, [p.joined ? t('pl.joined', { time: clockTime(p.joined, locale) }) : '',
        p.left ? t('pl.left', { time: clockTime(p.left, locale) }) : ''].filter(Boolean).join(' · ')))));
  }

  function draw() {
    const pos = clock.position();
    els.play.textContent = clock.running ? t('pl.pause') : t('pl.play');
    els.time.textContent = `${formatOffset(pos)} / ${formatOffset(detail.timeline.durationMs)}`;
    const p = pct(pos);
    els.fill.style.width = `${p}%`;
    els.head.style.left = `${p}%`;
    els.bar.setAttribute('aria-valuenow', String(Math.round(pos)));
    for (const b of els.speeds) b.classList.toggle('on', Number(b.dataset.rate) === clock.rate);
    let current = -1;
    els.eventItems.forEach((x, i) => {
      if (!x.ev.outside && x.ev.offsetMs <= pos) current = i;
    });
    els.eventItems.forEach((x, i) => x.item.classList.toggle('current', i === current));
  }

  // load points one of a tile's players at a segment, at seconds into it.
  function load(tile, slot, seg, at) {
    const v = tile.vids[slot];
    v.pause();
    v.src = api.segmentURL(id, seg.index);
    v.currentTime = at;
    v.playbackRate = clock.rate;
    tile.loaded[slot] = seg.index;
    if (slot === tile.cur) {
      tile.segStart = seg.startMs;
      tile.failed = false;
      tile.startFrom = null;
    }
  }

  // stalled reports a tile that should be playing but has not moved for a
  // while (its decoder or the network cannot keep up): the clock waits for
  // it like for a tile that is loading.
  function stalled(tile, v) {
    const now = performance.now();
    if (!clock.moving || v.paused || v.ended || v.currentTime !== tile.lastTime) {
      tile.lastTime = v.currentTime;
      tile.lastAt = now;
      return false;
    }
    if (now - tile.lastAt > STALL_MS) {
      tile.stalls++;
      tile.lastAt = now;
      return true;
    }
    return false;
  }

  // tick puts every tile where the clock is.
  function tick() {
    if (!clock) return;
    const dur = detail.timeline.durationMs;
    if (clock.running && clock.ended()) {
      clock.pause();
    }
    const pos = clock.position();
    const starting = clock.running && clock.held;
    let needHold = false;
    for (const tile of tiles) {
      const present = inSpans(tile.presence, pos) || (pos >= dur && inSpans(tile.presence, dur - 1));
      const seg = present ? segmentAt(tile.segments, pos, dur) : null;
      tile.el.hidden = !present;
      tile.el.classList.toggle('novideo', present && !seg);
      // A segment the browser could not play stays dark (the badge and
      // the verification say why); the tile comes back with the next one.
      tile.active = !!seg && !(tile.failed && tile.loaded[tile.cur] === seg.index);
      if (!tile.active) {
        for (const x of tile.vids) if (!x.paused) x.pause();
        continue;
      }
      const want = localSeconds(seg, pos);
      if (tile.loaded[tile.cur] !== seg.index) {
        const other = 1 - tile.cur;
        if (tile.loaded[other] === seg.index) {
          // The next segment is loaded: swap without waiting.
          tile.video.pause();
          tile.video.classList.add('standby');
          tile.cur = other;
          tile.video.classList.remove('standby');
          tile.segStart = seg.startMs;
          tile.video.playbackRate = clock.rate;
        } else {
          load(tile, tile.cur, seg, want);
          needHold = true;
          continue;
        }
      }
      const v = tile.video;
      const next = nextSegment(tile.segments, seg);
      if (next && tile.loaded[1 - tile.cur] !== next.index && seg.endMs - pos < PRELOAD_MS) {
        load(tile, 1 - tile.cur, next, 0);
      }
      if (!ready(v) || stalled(tile, v)) {
        needHold = true;
        continue;
      }
      // While the clock waits for started tiles to move, they run ahead of
      // it on purpose: the clock is set to them once all move.
      if (starting && tile.startFrom != null) continue;
      const c = correction(v.currentTime, want, clock.rate, v.duration);
      if (c.seek !== undefined) {
        v.currentTime = c.seek;
        needHold = true;
        continue;
      }
      const r = clock.moving ? c.rate : clock.rate;
      if (v.playbackRate !== r) v.playbackRate = r;
    }
    const active = tiles.filter((tile) => tile.active);
    if (!clock.running) {
      for (const tile of active) if (!tile.video.paused) tile.video.pause();
    } else if (needHold) {
      // Someone is not ready: everyone waits where they are.
      clock.hold(true);
      for (const tile of active) {
        tile.startFrom = null;
        if (!tile.video.paused) tile.video.pause();
      }
    } else if (clock.held) {
      // Everyone is ready: start the videos, and start the clock once they
      // all move, from where they are, so start-up latency is not drift.
      for (const tile of active) {
        const v = tile.video;
        if (tile.startFrom == null) {
          tile.startFrom = v.currentTime;
          v.playbackRate = clock.rate;
          if (v.paused && !v.ended) v.play().catch(() => {});
        }
      }
      const moving = active.every((tile) => tile.video.ended || (!tile.video.paused && tile.video.currentTime > tile.startFrom + 0.005));
      if (moving) {
        const at = active.filter((tile) => !tile.video.ended).map((tile) => tile.segStart + tile.video.currentTime * 1000).sort((a, b) => a - b);
        if (at.length) clock.seek(at[Math.floor((at.length - 1) / 2)]);
        clock.hold(false);
        for (const tile of active) tile.startFrom = null;
      }
    } else {
      for (const tile of active) {
        const v = tile.video;
        if (v.paused && !v.ended) v.play().catch(() => {});
      }
    }
    draw();
  }

  function togglePlay() {
    if (clock.running) {
      clock.pause();
    } else {
      clock.play();
      clock.hold(true);
    }
    tick();
  }

  function seek(ms) {
    clock.seek(ms);
    // Move every tile now, so none plays on from the old place.
    const pos = clock.position();
    for (const tile of tiles) {
      const seg = segmentAt(tile.segments, pos, detail.timeline.durationMs);
      if (seg && tile.loaded[tile.cur] === seg.index) tile.video.currentTime = localSeconds(seg, pos);
    }
    if (clock.running) clock.hold(true);
    tick();
  }

  function setRate(r) {
    clock.setRate(r);
    for (const tile of tiles) for (const v of tile.vids) v.playbackRate = r;
    draw();
  }

  function onBarClick(ev) {
    const rect = els.bar.getBoundingClientRect();
    if (rect.width <= 0) return;
    seek(((ev.clientX - rect.left) / rect.width) * detail.timeline.durationMs);
  }

  function onBarKey(ev) {
    const step = ev.shiftKey ? 30000 : 5000;
    if (ev.key === 'ArrowRight') seek(clock.position() + step);
    else if (ev.key === 'ArrowLeft') seek(clock.position() - step);
    else if (ev.key === ' ') togglePlay();
    else return;
    ev.preventDefault();
  }

  // exposeHook lets automation read what the page shows and where each
  // tile is against the clock, in one synchronous call.
  function exposeHook() {
    window.duchaReplay = {
      snapshot() {
        const pos = clock.position();
        return {
          recording: id,
          positionMs: pos,
          durationMs: detail.timeline.durationMs,
          running: clock.running,
          held: clock.held,
          rate: clock.rate,
          integrity: integrity && integrity.result() ? integrity.result().result : null,
          tiles: tiles.map((tile) => ({
            key: tile.key,
            participant: tile.participant.id,
            name: tile.participant.name,
            visible: !tile.el.hidden,
            active: tile.active,
            segment: tile.loaded[tile.cur],
            currentTime: tile.video.currentTime,
            playbackRate: tile.video.playbackRate,
            waits: tile.waits,
            stalls: tile.stalls,
            timelineMs: tile.segStart + tile.video.currentTime * 1000,
            videoWidth: tile.video.videoWidth,
            readyState: tile.video.readyState,
            paused: tile.video.paused,
            ended: tile.video.ended,
            seeking: tile.video.seeking,
          })),
        };
      },
      seek,
      play: () => { if (!clock.running) togglePlay(); },
      pause: () => { if (clock.running) togglePlay(); },
    };
  }

  return {
    onLang() {
      if (!detail) return;
      drawText();
      draw();
      if (integrity) integrity.onLang();
    },
    destroy() {
      destroyed = true;
      clearInterval(timer);
      for (const tile of tiles) {
        for (const v of tile.vids) {
          v.pause();
          v.removeAttribute('src');
          v.load();
        }
      }
      if (window.duchaReplay) delete window.duchaReplay;
    },
  };
}
