// SDP repairs for browser bugs we cannot avoid from the signaling side.

const EXTMAP = /^a=extmap:(\d+)(\/[a-z]+)? (\S+)(.*)$/;

// extmapIds returns the uri -> id map of an SDP (first mention wins).
export function extmapIds(sdp) {
  const out = new Map();
  for (const line of (sdp || '').split(/\r?\n/)) {
    const m = EXTMAP.exec(line);
    if (m && !out.has(m[3])) out.set(m[3], Number(m[1]));
  }
  return out;
}

// fixExtmapIds renumbers the RTP header extensions of an offer so that every
// id means one extension across the BUNDLE, and agrees with the server.
//
// Why: after a glare rollback Chromium keeps the extension ids of its
// rolled-back offer, while the answered m-sections use the server's ids (Pion
// numbers them in its own order). Its next createOffer then maps one id to two
// extensions and setLocalDescription refuses it ("BUNDLE group contains a
// codec collision for header extension id=N"). Chromium also remembers the ids
// of an offer that the server then ignores, and refuses a later server offer
// that gives one of them another meaning ("RTP extension ID reassignment not
// supported"). So: extensions the server has named (serverIds) take the
// server's ids; all others move to the top of the one-byte range, away from
// the low ids Pion hands out to extensions it has not negotiated yet.
export function fixExtmapIds(sdp, serverIds = new Map()) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const byUri = new Map();
  const used = new Set();
  for (const [uri, id] of serverIds) {
    if (!used.has(id)) {
      byUri.set(uri, id);
      used.add(id);
    }
  }
  const fresh = () => {
    // 15 is reserved in the one-byte header form (RFC 8285); past 14 only the
    // two-byte form works, which extmap-allow-mixed permits.
    for (let id = 14; id >= 1; id--) {
      if (!used.has(id)) {
        used.add(id);
        return id;
      }
    }
    for (let id = 16; id < 256; id++) {
      if (!used.has(id)) {
        used.add(id);
        return id;
      }
    }
    return null;
  };
  let changed = false;
  const out = [];
  for (const line of sdp.split(eol)) {
    const m = EXTMAP.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    let id = byUri.get(m[3]);
    if (id === undefined) {
      id = fresh();
      if (id === null) continue; // cannot happen with the few extensions browsers offer
      byUri.set(m[3], id);
    }
    if (id !== Number(m[1])) changed = true;
    out.push(`a=extmap:${id}${m[2] || ''} ${m[3]}${m[4]}`);
  }
  return { sdp: out.join(eol), changed };
}
