// Pure helpers of the console: times, durations, attendance wording and
// connection quality. No DOM here, so node tests cover them directly.

const pad = (n) => String(n).padStart(2, '0');

// toRFC3339 writes d in the browser's own time zone with its offset, as the
// API stores and returns times as given: a session scheduled in Taiyuan
// reads back as +08:00, not as UTC.
export function toRFC3339(d) {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}` +
    `:${pad(d.getSeconds())}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

// inputValue is the value of an <input type="datetime-local"> for d.
export function inputValue(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// fromInput parses a datetime-local value (local time) or returns null.
export function fromInput(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v || '');
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  return Number.isNaN(d.getTime()) ? null : d;
}

// dateTime shows an RFC 3339 time in the browser's zone as
// "2026-03-02 10:00"; withSeconds adds ":05". Empty for a missing time.
export function dateTime(iso, withSeconds = false) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${s}:${pad(d.getSeconds())}` : s;
}

// clock shows only the time of day: "10:08:03".
export function clock(iso) {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// duration words a number of seconds: under a minute in seconds, under an
// hour in minutes (rounded down: "late by 8 min" for 8 min 59 s is what a
// chair expects), beyond that hours and minutes.
export function duration(seconds, t) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s < 60) return t('dur.s', { s });
  const m = Math.floor(s / 60);
  if (m < 60) return t('dur.m', { m });
  const h = Math.floor(m / 60);
  const rest = m % 60;
  return rest ? t('dur.hm', { h, m: rest }) : t('dur.h', { h });
}

// attendanceText is the status of one unit of an attendance report.
export function attendanceText(u, t) {
  switch (u.status) {
    case 'on_time':
      return t('att.on_time');
    case 'late':
      return t('att.late', { d: duration(u.lateSeconds, t) });
    case 'absent':
      return t('att.absent');
    case 'pending':
      return t('att.pending');
    default:
      return u.status || '';
  }
}

// quality grades a participant's connection from RTCP figures; null means
// not yet known (no receiver report).
export function quality(rttMillis, lossPercent) {
  if (rttMillis == null && lossPercent == null) return 'unknown';
  const rtt = rttMillis ?? 0;
  const loss = lossPercent ?? 0;
  if (rtt > 400 || loss > 5) return 'poor';
  if (rtt > 150 || loss > 2) return 'fair';
  return 'good';
}

export function rttText(v, t) {
  return v == null ? t('con.none') : `${Math.round(v)} ms`;
}

export function lossText(v, t) {
  return v == null ? t('con.none') : `${Number(v).toFixed(1)}%`;
}

// rateText shows a bit rate given in kbit/s.
export function rateText(kbps, t) {
  if (kbps == null) return t('con.none');
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`;
}

// Session controls, by status (rooms/status.go): which moderation buttons
// make sense now. The server checks again; this only avoids offering a
// button that must fail.
export function allowedControls(session) {
  const st = session.status;
  const open = st === 'scheduled' || st === 'lobby' || st === 'live';
  return {
    join: open,
    'open-lobby': st === 'scheduled',
    start: st === 'scheduled' || st === 'lobby',
    lock: open && !session.locked,
    unlock: open && session.locked,
    'recording-on': open && !session.recording,
    'recording-off': open && session.recording,
    end: st === 'live',
    cancel: st === 'scheduled' || st === 'lobby',
    invite: open,
  };
}

// currentInvitations picks, per invited unit and in invitedUnits order, the
// newest invitation, and returns the rest as history (revoked, superseded).
export function currentInvitations(units, invitations) {
  const newest = new Map();
  for (const inv of invitations) {
    const prev = newest.get(inv.unitCode);
    if (!prev || String(inv.createdAt) >= String(prev.createdAt)) newest.set(inv.unitCode, inv);
  }
  const current = [];
  for (const u of units) {
    if (newest.has(u.code)) current.push(newest.get(u.code));
  }
  const chosen = new Set(current.map((i) => i.id));
  const history = invitations.filter((i) => !chosen.has(i.id));
  return { current, history };
}

// cleanUnits trims the rows of the schedule form and drops empty ones.
export function cleanUnits(rows) {
  return rows
    .map((r) => ({ code: (r.code || '').trim(), name: (r.name || '').trim() }))
    .filter((r) => r.code !== '' || r.name !== '');
}

// eventText words one event-log entry; names come from the event data, or
// from unitNames (code -> name) for events that carry only a unit code.
export function eventText(e, t, unitNames = {}) {
  const d = e.data || {};
  const unit = d.unit ? unitNames[d.unit] || d.unit : '';
  const name = d.name || unit || e.subject || '';
  let key = `ev.${e.type}`;
  if (e.type === 'mute' || e.type === 'unmute') {
    const on = e.type === 'unmute';
    if (d.by === 'supervisor') key = on ? 'ev.modUnmute' : 'ev.modMute';
    else if (d.kind === 'video') key = on ? 'ev.unmuteVideo' : 'ev.muteVideo';
  }
  const known = t(key) !== key;
  if (!known) return t('ev.other', { type: e.type });
  return t(key, { name, unit, text: d.text || '' });
}
