// Line icons drawn for ducha, built as DOM nodes because the
// Content-Security-Policy forbids inline markup tricks.

const SVG_NS = 'http://www.w3.org/2000/svg';

const SHAPES = {
  mic: [
    ['rect', { x: 9, y: 3, width: 6, height: 11, rx: 3 }],
    ['path', { d: 'M5 11a7 7 0 0 0 14 0M12 18v3M8 21h8' }],
  ],
  camera: [
    ['rect', { x: 2, y: 6, width: 14, height: 12, rx: 2 }],
    ['path', { d: 'M16 10.5l6-3.5v10l-6-3.5z' }],
  ],
  people: [
    ['circle', { cx: 9, cy: 8, r: 3.5 }],
    ['path', { d: 'M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6' }],
    ['circle', { cx: 17, cy: 9, r: 2.5 }],
    ['path', { d: 'M16.5 14.2c2.8.3 5 2.4 5 5.3' }],
  ],
  leave: [['path', { d: 'M2.5 14.5c5.2-5.3 13.8-5.3 19 0l-2.6 3-3.6-1.6v-2.6c-2.2-.8-4.4-.8-6.6 0v2.6L5.1 17.5z' }]],
  close: [['path', { d: 'M6 6l12 12M18 6L6 18' }]],
  chat: [['path', { d: 'M4 5.5h16v10.5H10l-4.5 3.5V16H4z' }], ['path', { d: 'M8 9.5h8M8 12.5h5' }]],
  slash: [['path', { d: 'M3.5 3.5l17 17', class: 'icon-slash' }]],
};

// icon returns an <svg> for name; crossed adds a slash (microphone off,
// camera off), drawn in the alert colour by the stylesheet.
export function icon(name, { crossed = false } = {}) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon icon-${name}${crossed ? ' crossed' : ''}`);
  const shapes = crossed ? [...SHAPES[name], ...SHAPES.slash] : SHAPES[name];
  for (const [tag, attrs] of shapes) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.appendChild(el);
  }
  return svg;
}
