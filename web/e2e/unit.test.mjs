// Pure-logic tests of the page modules, run with `node --test` (no browser).

import test from 'node:test';
import assert from 'node:assert/strict';
import { fixExtmapIds, extmapIds } from '../static/sdp.js';
import { errorKey, openMedia } from '../static/media.js';
import { createI18n, MESSAGES } from '../static/i18n.js';
import { FATAL_ERROR_CODES, FATAL_CLOSE_CODES, socketURL } from '../static/signaling.js';
import { parseLink, fatalDialog } from '../static/link.js';

function extmaps(sdp) {
  const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
  return sections.map((s) => [...s.matchAll(/^a=extmap:(\d+)(?:\/\w+)? (\S+)/gm)].map((m) => [Number(m[1]), m[2]]));
}

const TWCC = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

test('fixExtmapIds gives the server its ids and moves the rest out of its way', () => {
  const sdp = [
    'v=0', 'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0',
    `a=extmap:4 ${TWCC}`,
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:1',
    `a=extmap:3 ${TWCC}`,
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
    '',
  ].join('\r\n');
  const { sdp: out, changed } = fixExtmapIds(sdp, new Map([[TWCC, 4]]));
  assert.equal(changed, true);
  assert.ok(out.endsWith('\r\n'), 'line endings kept');
  const [audio, video] = extmaps(out);
  assert.deepEqual(audio, [[4, TWCC]]);
  const byUri = Object.fromEntries(video.map(([id, uri]) => [uri, id]));
  assert.equal(byUri[TWCC], 4);
  // Not named by the server: moved to the top of the one-byte range, so the
  // low ids stay free for what the server has not negotiated yet.
  assert.equal(byUri['urn:ietf:params:rtp-hdrext:sdes:mid'], 14);
  assert.equal(byUri['http://www.webrtc.org/experiments/rtp-hdrext/playout-delay'], 13);
  const seen = new Map();
  for (const [id, uri] of [...audio, ...video]) {
    assert.ok(!seen.has(id) || seen.get(id) === uri, `id ${id} used for ${seen.get(id)} and ${uri}`);
    seen.set(id, uri);
  }
});

test('fixExtmapIds leaves an offer that already agrees with the server alone', () => {
  const sdp = 'v=0\nm=audio 9 X 111\na=extmap:1 urn:a\na=extmap:2/sendonly urn:b x=y\nm=video 9 X 96\na=extmap:1 urn:a\na=extmap:3 urn:c\n';
  const server = extmapIds(sdp);
  assert.deepEqual([...server], [['urn:a', 1], ['urn:b', 2], ['urn:c', 3]]);
  const res = fixExtmapIds(sdp, server);
  assert.equal(res.changed, false);
  assert.equal(res.sdp, sdp);
});

test('fixExtmapIds keeps direction and attributes, and skips the reserved id 15', () => {
  const ids = new Map([['urn:a', 1], ['urn:x', 14]]);
  const { sdp: out } = fixExtmapIds('m=audio 9 X 111\na=extmap:1 urn:a\nm=video 9 X 96\na=extmap:1/recvonly urn:b attr\n', ids);
  assert.match(out, /a=extmap:13\/recvonly urn:b attr/);
  const many = new Map(Array.from({ length: 14 }, (_, i) => [`urn:s${i}`, i + 1]));
  assert.match(fixExtmapIds('m=audio 9 X 111\na=extmap:3 urn:new\n', many).sdp, /a=extmap:16 urn:new/);
});

test('getUserMedia errors map to actionable messages', () => {
  const cases = {
    NotReadableError: 'err.deviceBusy',
    TrackStartError: 'err.deviceBusy',
    NotAllowedError: 'err.permission',
    PermissionDeniedError: 'err.permission',
    NotFoundError: 'err.noDevice',
    OverconstrainedError: 'err.noDevice',
    SomethingNew: 'err.media',
  };
  for (const [name, key] of Object.entries(cases)) assert.equal(errorKey({ name }), key, name);
  const zh = createI18n();
  assert.equal(zh.t('err.deviceBusy'), '摄像头或麦克风被其他程序占用，请关闭其他程序后重试');
});

function fakeDevices(outcomes) {
  const calls = [];
  return {
    calls,
    getUserMedia: async (c) => {
      calls.push(Object.keys(c).sort().join('+'));
      const o = outcomes.shift();
      if (o instanceof Error) throw o;
      return o;
    },
  };
}

const named = (name) => Object.assign(new Error(name), { name });

test('openMedia falls back to the device that exists', async () => {
  const d = fakeDevices([named('NotFoundError'), 'audio-only-stream']);
  assert.deepEqual(await openMedia(d, true), { stream: 'audio-only-stream' });
  assert.deepEqual(d.calls, ['audio+video', 'audio']);

  const none = fakeDevices([named('NotFoundError'), named('NotFoundError'), named('NotFoundError')]);
  assert.deepEqual(await openMedia(none, true), { error: 'err.noDevice' });
  assert.deepEqual(none.calls, ['audio+video', 'audio', 'video']);
});

test('openMedia does not retry a busy or refused device', async () => {
  const busy = fakeDevices([named('NotReadableError')]);
  assert.deepEqual(await openMedia(busy, true), { error: 'err.deviceBusy' });
  assert.equal(busy.calls.length, 1);
  const refused = fakeDevices([named('NotAllowedError')]);
  assert.deepEqual(await openMedia(refused, true), { error: 'err.permission' });
});

test('openMedia explains an insecure page', async () => {
  assert.deepEqual(await openMedia(undefined, false), { error: 'err.insecure' });
  assert.deepEqual(await openMedia(undefined, true), { error: 'err.unsupported' });
});

test('i18n defaults to Chinese and both languages have the same keys', () => {
  const i18n = createI18n();
  assert.equal(i18n.lang(), 'zh');
  assert.equal(i18n.t('err.invalidLink'), '邀请链接无效或已过期，请联系督查人员重新获取');
  assert.equal(i18n.t('members.title', { n: 3 }), '成员（3）');
  assert.equal(i18n.t('no.such.key'), 'no.such.key');
  assert.deepEqual(Object.keys(MESSAGES.en).sort(), Object.keys(MESSAGES.zh).sort());
});

test('signaling: which endings are final, and the socket address', () => {
  for (const c of ['invalid_token', 'token_expired', 'wrong_room', 'unsupported_version']) assert.ok(FATAL_ERROR_CODES.has(c), c);
  for (const c of ['rate_limited', 'internal', 'join_timeout', 'bad_sdp']) assert.ok(!FATAL_ERROR_CODES.has(c), c);
  assert.ok(FATAL_CLOSE_CODES.has(4001) && !FATAL_CLOSE_CODES.has(1001) && !FATAL_CLOSE_CODES.has(4008));
  assert.equal(socketURL({ protocol: 'https:', host: 'ducha.example:8443' }), 'wss://ducha.example:8443/ws');
  assert.equal(socketURL({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/ws');
});

test('parseLink takes the room from the path and the token from the fragment', () => {
  const loc = (pathname, hash) => ({ pathname, hash });
  assert.deepEqual(parseLink(loc('/join/dc-2026-001', '#t=aaa.bbb.ccc')), { room: 'dc-2026-001', token: 'aaa.bbb.ccc' });
  assert.deepEqual(parseLink(loc('/join/%E7%9D%A3%E6%9F%A5/', '#t=x&lang=en')), { room: '督查', token: 'x' });
  assert.deepEqual(parseLink(loc('/join/r1', '')), { room: 'r1', token: '' });
  assert.deepEqual(parseLink(loc('/join/%E0%A4%A', '#t=x')), { room: '', token: 'x' }, 'bad escapes are not a room');
  assert.deepEqual(parseLink(loc('/join/a/b', '#t=x')), { room: '', token: 'x' });
});

test('fatal endings tell the user what to do', () => {
  const zh = createI18n();
  for (const code of ['invalid_link', 'invalid_token', 'token_expired', 'wrong_room']) {
    const d = fatalDialog(code, () => {});
    assert.equal(zh.t(d.textKey), '邀请链接无效或已过期，请联系督查人员重新获取', code);
    assert.equal(d.actions, undefined, `${code}: a retry cannot help, so no button`);
  }
  const replaced = fatalDialog('replaced', () => {});
  assert.equal(zh.t(replaced.textKey), '您已在其他窗口加入');
  assert.equal(replaced.actions[0].key, 'btn.rejoin');
  assert.equal(fatalDialog('something_new', () => {}).textKey, 'err.server');
});
