// Pure-logic tests of the join page's speaker slots (slots.js; PROTOCOL.md
// "Large rooms"), run with `node --test` (no browser). The real-Chromium
// check against a ducha server is TestBrowserLargeRoom (large.mjs).

import test from 'node:test';
import assert from 'node:assert/strict';
import { isSlotStream, awaitedTracks, tileMedia, SlotAudio } from '../static/slots.js';

test('slot streams are told apart from participants\' tracks', () => {
  for (const id of ['speaker-0', 'speaker-1', 'speaker-2', 'speaker-12']) assert.equal(isSlotStream(id), true, id);
  for (const id of ['', 'speaker-', 'speaker-x', 'Tspeaker-0', 'speaker-0 ', 'TABCDEF', 'speaker', null, undefined, 7]) {
    assert.equal(isSlotStream(id), false, String(id));
  }
});

const track = (id, participantId, kind, source) => ({ id, participantId, kind, source: source || (kind === 'audio' ? 'microphone' : 'camera') });
const ROOM = [
  track('Tme-a', 'Pme', 'audio'),
  track('Tme-v', 'Pme', 'video'),
  track('Tsup-a', 'Psup', 'audio'),
  track('Tsup-v', 'Psup', 'video'),
  track('Tcty-a', 'Pcty', 'audio'),
  track('Tcty-v', 'Pcty', 'video'),
  track('Tcty-s', 'Pcty', 'video', 'screen'),
  track('Tobs-x', 'Pnew', 'video'), // a participant we have not been told of yet
];
const ROLES = new Map([['Psup', 'supervisor'], ['Pcty', 'county']]);

test('a small room: every other participant\'s track is awaited', () => {
  const got = awaitedTracks({ tracks: ROOM, selfId: 'Pme', selfRole: 'county', roles: ROLES, slotMode: false });
  assert.deepEqual(got, ['Tsup-a', 'Tsup-v', 'Tcty-a', 'Tcty-v', 'Tcty-s', 'Tobs-x']);
});

test('a large room: no participant audio, and a county gets no other county\'s video', () => {
  const county = awaitedTracks({ tracks: ROOM, selfId: 'Pme', selfRole: 'county', roles: ROLES, slotMode: true });
  // The supervisor's video still comes; a publisher of unknown role is
  // awaited (the deadline bounds that).
  assert.deepEqual(county, ['Tsup-v', 'Tobs-x']);
  // Supervisors and observers watch the grid: every video comes.
  for (const role of ['supervisor', 'observer']) {
    const got = awaitedTracks({ tracks: ROOM, selfId: 'Pme', selfRole: role, roles: ROLES, slotMode: true });
    assert.deepEqual(got, ['Tsup-v', 'Tcty-v', 'Tcty-s', 'Tobs-x'], role);
  }
  // Any iterable will do (main.js passes a Map's values).
  const m = new Map(ROOM.map((t) => [t.id, t]));
  assert.deepEqual(awaitedTracks({ tracks: m.values(), selfId: 'Pme', selfRole: 'county', roles: ROLES, slotMode: true }), county);
});

test('tile media: tracks by participant; in slot mode the microphone is heard on the slots', () => {
  const tracks = new Map(ROOM.map((t) => [t.id, t]));
  const cam = { id: 'mst-1' };
  const mic = { id: 'mst-2' };
  const remote = new Map([['Tsup-v', cam], ['Tsup-a', mic], ['Tunknown', { id: 'mst-3' }]]);
  const small = tileMedia(remote, tracks, false);
  assert.deepEqual([...small.keys()], ['Psup'], 'a track without track-published is not drawn');
  assert.deepEqual(small.get('Psup'), { camera: cam, microphone: mic });

  const large = tileMedia(new Map([['Tsup-v', cam]]), tracks, true);
  assert.deepEqual(large.get('Psup'), { camera: cam, slotAudio: true });
  assert.deepEqual(large.get('Pcty'), { slotAudio: true });
  assert.equal(large.has('Pnew'), false, 'no audio published: nothing to hear');
});

// A DOM just large enough for SlotAudio.
function fakeDoc({ refuse = false } = {}) {
  const container = {
    children: [],
    append(el) {
      this.children.push(el);
      el.isConnected = true;
    },
  };
  const doc = {
    createElement(tag) {
      const el = {
        tag, dataset: {}, autoplay: false, srcObject: null, paused: true, isConnected: false, plays: 0,
        play() {
          this.plays++;
          if (refuse) return Promise.reject(Object.assign(new Error('no gesture'), { name: 'NotAllowedError' }));
          this.paused = false;
          return Promise.resolve();
        },
        remove() {
          container.children.splice(container.children.indexOf(this), 1);
          this.isConnected = false;
        },
      };
      return el;
    },
  };
  return { doc, container };
}

function fakeTrack(id) {
  return Object.assign(new EventTarget(), { id, kind: 'audio', readyState: 'live', muted: false });
}

const newStream = (tracks) => ({ tracks });

test('SlotAudio plays each slot on its own element, kept until the track ends', async () => {
  const { doc, container } = fakeDoc();
  const slots = new SlotAudio(doc, container, { newStream });
  const a = fakeTrack('a');
  const b = fakeTrack('b');
  slots.add('speaker-1', b);
  slots.add('speaker-0', a);
  slots.add('speaker-0', a); // ontrack again for the same track: nothing changes
  assert.equal(container.children.length, 2);
  const el0 = container.children.find((e) => e.dataset.slot === 'speaker-0');
  assert.equal(el0.autoplay, true);
  assert.deepEqual(el0.srcObject.tracks, [a]);
  assert.equal(el0.plays, 1, 'play() once per track');
  await Promise.resolve();
  assert.deepEqual(slots.snapshot().map((s) => [s.id, s.track, s.paused, s.attached]),
    [['speaker-0', 'a', false, true], ['speaker-1', 'b', false, true]]);

  a.readyState = 'ended';
  a.dispatchEvent(new Event('ended'));
  assert.deepEqual(container.children.map((e) => e.dataset.slot), ['speaker-1']);
  assert.equal(el0.srcObject, null);
  assert.equal(el0.isConnected, false);
});

test('SlotAudio: a new track on a slot replaces the old one, whose end then changes nothing', () => {
  const { doc, container } = fakeDoc();
  const slots = new SlotAudio(doc, container, { newStream });
  const old = fakeTrack('old');
  const fresh = fakeTrack('fresh');
  slots.add('speaker-0', old);
  slots.add('speaker-0', fresh);
  assert.equal(container.children.length, 1);
  assert.deepEqual(container.children[0].srcObject.tracks, [fresh]);
  old.dispatchEvent(new Event('ended'));
  assert.equal(container.children.length, 1, 'the old track ending does not drop the slot');
  assert.equal(slots.snapshot()[0].track, 'fresh');
});

test('SlotAudio drops a slot removed from its stream, and everything on clear', () => {
  const { doc, container } = fakeDoc();
  const slots = new SlotAudio(doc, container, { newStream });
  const a = fakeTrack('a');
  const stream = new EventTarget();
  slots.add('speaker-0', a, stream);
  slots.add('speaker-1', fakeTrack('b'));
  const other = Object.assign(new Event('removetrack'), { track: fakeTrack('zzz') });
  stream.dispatchEvent(other);
  assert.equal(container.children.length, 2, 'another track leaving the stream is not ours');
  stream.dispatchEvent(Object.assign(new Event('removetrack'), { track: a }));
  assert.deepEqual(container.children.map((e) => e.dataset.slot), ['speaker-1']);
  slots.clear();
  assert.equal(container.children.length, 0);
  assert.deepEqual(slots.snapshot(), []);
  assert.deepEqual(slots.elements(), []);
});

test('SlotAudio reports a play() the browser refuses without a gesture', async () => {
  const { doc, container } = fakeDoc({ refuse: true });
  let blocked = 0;
  const slots = new SlotAudio(doc, container, { newStream, onBlocked: () => blocked++ });
  slots.add('speaker-0', fakeTrack('a'));
  await new Promise((r) => setImmediate(r));
  assert.equal(blocked, 1);
  // The page's banner click plays them again (ui.js retryAudio).
  assert.equal(slots.elements().length, 1);
  assert.equal(slots.elements()[0].paused, true);
});
