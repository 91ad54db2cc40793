// SDP repairs for browser bugs we cannot avoid from the signaling side.

// fixExtmapIds makes RTP header extension ids consistent across all
// m-sections of an offer, which BUNDLE requires.
//
// Why: after a glare rollback Chromium keeps the extension ids of its
// rolled-back offer for transceivers the server's offer did not take over,
// while the answered m-sections use the server's ids (Pion numbers them in
// its own order). Its next createOffer then maps one id to two extensions and
// setLocalDescription refuses it ("BUNDLE group contains a codec collision
// for header extension id=N"). Earlier m-sections are the negotiated ones, so
// their ids win; later sections are renumbered to match, and extensions not
// negotiated yet get ids nobody uses.
export function fixExtmapIds(sdp) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(eol);
  const re = /^a=extmap:(\d+)(\/[a-z]+)? (\S+)(.*)$/;
  const byUri = new Map();
  const used = new Set();
  for (const line of lines) {
    const m = re.exec(line);
    if (m && !byUri.has(m[3]) && !used.has(Number(m[1]))) {
      byUri.set(m[3], Number(m[1]));
      used.add(Number(m[1]));
    }
  }
  const fresh = () => {
    // Search from the top of the one-byte range down: Pion numbers the
    // extensions it has not negotiated yet from 1 upwards, so low ids are the
    // ones its next offer is likely to claim. 15 is reserved (RFC 8285).
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
  for (const line of lines) {
    const m = re.exec(line);
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
