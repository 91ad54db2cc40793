// A tiny DOM builder. Text always goes in as text nodes: names, titles and
// chat come from other people and must never become markup.

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
  add(e, children);
  return e;
}

function add(e, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) add(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(container, ...children) {
  container.replaceChildren();
  add(container, children);
}
