// Simulcast on the sending side (PROTOCOL.md, "Simulcast"): the camera goes
// out as three encodings and the server picks one per viewer, so a county
// PC on a thin line gets a small picture instead of a frozen one. These are
// the pure parts; peer.js applies them to the RTCPeerConnection.

// The camera's layers, lowest first. Chromium sends only the layers the
// capture size allows (a 640x480 camera gives fewer), which the server copes
// with. maxBitrate keeps the three together near 2 Mbit/s.
const CAMERA_LAYERS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 }),
]);

// sendEncodings returns the sendEncodings for a track of the given source,
// or undefined for one ordinary stream. Only the camera is simulcast: the
// microphone has nothing to scale, and a shared screen must keep small text
// sharp, which a downscaled layer would not.
export function sendEncodings(source) {
  if (source !== 'camera') return undefined;
  return CAMERA_LAYERS.map((l) => ({ ...l }));
}

// applyLayers sets encodings[i].active to whether its rid is in active (the
// server's `layers` list) and says whether anything changed. An empty list
// pauses every layer: nobody watches, so the camera need not be encoded.
// Encodings without a rid (an ordinary stream) are never touched. The server
// always lists layers it has not received yet (PROTOCOL.md, "Simulcast"), so
// a layer the browser has not started is never paused before it is seen.
export function applyLayers(encodings, active) {
  const want = new Set(Array.isArray(active) ? active : []);
  let changed = false;
  for (const e of encodings || []) {
    if (!e.rid) continue;
    const on = want.has(e.rid);
    if (e.active !== on) {
      e.active = on;
      changed = true;
    }
  }
  return changed;
}

const MAX_DIMENSION = 16384;

// displayedSize is the size, in device pixels, at which a video of
// videoW x videoH shows in a box of boxW x boxH CSS pixels with object-fit:
// contain (the page's tiles). Without a known video size yet it is the box.
export function displayedSize(boxW, boxH, videoW, videoH, dpr = 1) {
  let w = Math.max(0, boxW || 0);
  let h = Math.max(0, boxH || 0);
  if (w > 0 && h > 0 && videoW > 0 && videoH > 0) {
    const scale = Math.min(w / videoW, h / videoH);
    w = videoW * scale;
    h = videoH * scale;
  }
  const r = dpr > 0 ? dpr : 1;
  // The server refuses sizes past 16384 (bad_message); no screen is that large.
  const clamp = (v) => Math.min(MAX_DIMENSION, Math.round(v * r));
  return { width: clamp(w), height: clamp(h) };
}
