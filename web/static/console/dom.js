// A tiny DOM builder. Text is only ever set as text nodes: unit names,
// titles and chat come from other people and must never become markup.

// h builds an element: h('button', {class: 'btn', 'data-action': 'x', on:
// {click: fn}}, 'text', child...). Attributes that are false, null or
// undefined are left out; true sets an empty attribute.
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    } else if (k === 'class') {
      e.className = v;
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'muted') {
      e[k] = v;
    } else {
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// replace swaps the children of a container.
export function replace(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

// chip is a small coloured label: tone picks the colour in console.css.
export function chip(text, tone, attrs = {}) {
  return h('span', { ...attrs, class: ['chip', tone, attrs.class].filter(Boolean).join(' ') }, text);
}

// changed remembers the last data drawn in a slot and says whether new data
// differs. Panels are redrawn only on change, so a poll never replaces a
// button under the user's pointer or resets a text selection.
export function changeTracker() {
  const last = new Map();
  return (slot, data) => {
    const s = JSON.stringify(data);
    if (last.get(slot) === s) return false;
    last.set(slot, s);
    return true;
  };
}
