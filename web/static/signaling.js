// The websocket side of the protocol in signaling/PROTOCOL.md (version 1):
// one connection, JSON envelopes, an application ping, and a single
// notification when the connection is over for whatever reason.

export const PROTOCOL_VERSION = 1;

// Error codes after which reconnecting with the same link cannot help.
export const FATAL_ERROR_CODES = new Set(['invalid_token', 'token_expired', 'wrong_room', 'unsupported_version']);

// Close codes (PROTOCOL.md) that mean the same: 4001 bad token, 4000 a
// protocol mismatch that a retry would repeat.
export const FATAL_CLOSE_CODES = new Set([4000, 4001]);

// A close we report when the server stopped answering: no frame, not even a
// pong, for deadAfterMs. Browsers may take minutes to notice a dead TCP path.
export const CLOSE_SILENT = 4900;

export function socketURL(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class Signaling {
  // onMessage(msg) gets every parsed envelope; onClose({code, reason, local})
  // is called exactly once, whether the server, the network or we ended it.
  constructor({ url, onMessage, onClose, log = () => {}, pingEveryMs = 10000, deadAfterMs = 35000 }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onClose = onClose;
    this.log = log;
    this.pingEveryMs = pingEveryMs;
    this.deadAfterMs = deadAfterMs;
    this.ws = null;
    this.nextId = 1;
    this.timer = null;
    this.lastRx = 0;
    this.done = false;
  }

  // open resolves once the socket is open; it rejects (and onClose fires)
  // if the socket closes first.
  open() {
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => {
        opened = true;
        this.lastRx = Date.now();
        this.timer = setInterval(() => this.tick(), this.pingEveryMs);
        resolve();
      };
      ws.onmessage = (ev) => {
        this.lastRx = Date.now();
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch {
          this.log('signaling: frame is not JSON', ev.data);
          return;
        }
        if (!msg || typeof msg.type !== 'string') return;
        if (msg.type === 'pong') return;
        this.onMessage(msg);
      };
      ws.onerror = () => {
        // An error is always followed by close; the close carries the code.
      };
      ws.onclose = (ev) => {
        if (!opened) reject(new Error(`websocket closed before opening (${ev.code})`));
        this.finish({ code: ev.code, reason: ev.reason, local: false });
      };
    });
  }

  tick() {
    if (Date.now() - this.lastRx > this.deadAfterMs) {
      this.log('signaling: server silent, dropping the connection');
      this.close(CLOSE_SILENT, 'silent');
      return;
    }
    this.send('ping', {});
  }

  // send returns the envelope id, which comes back as `ref` in an error.
  send(type, data) {
    if (this.done || !this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = String(this.nextId++);
    const env = { type, id };
    if (data !== undefined) env.data = data;
    this.ws.send(JSON.stringify(env));
    return id;
  }

  // close ends the connection now and reports it through onClose with
  // local: true, without waiting for the closing handshake.
  close(code = 1000, reason = '') {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      try {
        this.ws.close(code, reason);
      } catch {
        this.ws.close();
      }
    }
    this.finish({ code, reason, local: true });
  }

  finish(info) {
    if (this.done) return;
    this.done = true;
    clearInterval(this.timer);
    if (this.ws) {
      this.ws.onmessage = null;
      this.ws.onclose = null;
    }
    this.onClose(info);
  }
}
