// The chat panel of the call page (聊天). Messages come from the server's
// `chat` broadcast, our own included, so what everyone sees is what the
// session's event log keeps. Text is set with textContent only.

import { icon } from './icons.js';

const MAX_SHOWN = 300;

function pad(n) {
  return String(n).padStart(2, '0');
}

function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export class ChatPanel {
  // onSend(text) sends a message; it returns false when it could not (not
  // admitted yet, connection down), and the text then stays in the box.
  constructor(doc, i18n, { onSend }) {
    this.doc = doc;
    this.i18n = i18n;
    this.$ = (id) => doc.getElementById(id);
    this.open = false;
    this.unread = 0;
    this.count = 0;
    this.enabled = false;
    this.$('btn-chat').prepend(icon('chat'));
    this.$('btn-chat-close').append(icon('close'));
    this.$('btn-chat').addEventListener('click', () => this.show(!this.open));
    this.$('btn-chat-close').addEventListener('click', () => this.show(false));
    this.$('chat-form').addEventListener('submit', (ev) => {
      // The CSP has form-action 'none': the form never navigates.
      ev.preventDefault();
      const input = this.$('chat-input');
      const text = input.value.trim();
      if (!text || !this.enabled) return;
      if (onSend(text)) input.value = '';
    });
    i18n.onChange(() => this.translate());
    this.translate();
  }

  translate() {
    this.$('chat-input').placeholder = this.i18n.t(this.enabled ? 'chat.placeholder' : 'chat.lobby');
    for (const li of this.doc.querySelectorAll('#chat-list .chat-msg.mine .chat-name')) li.textContent = this.i18n.t('me');
  }

  // setEnabled allows sending: only participants in the call may chat.
  setEnabled(on) {
    if (this.enabled === on) return;
    this.enabled = on;
    this.$('chat-input').disabled = !on;
    this.$('chat-send').disabled = !on;
    this.translate();
  }

  show(open) {
    this.open = open;
    this.$('chat').hidden = !open;
    this.$('btn-chat').classList.toggle('active', open);
    this.$('btn-chat').setAttribute('aria-expanded', String(open));
    if (open) {
      this.unread = 0;
      this.$('chat-input').focus();
      const list = this.$('chat-list');
      list.scrollTop = list.scrollHeight;
    }
    this.drawCount();
  }

  // add shows one `chat` message: {id, from, name, text, time}.
  add(m, selfId) {
    const list = this.$('chat-list');
    const mine = m.from === selfId;
    const li = this.doc.createElement('li');
    li.className = mine ? 'chat-msg mine' : 'chat-msg';
    li.dataset.from = m.from || '';
    const head = this.doc.createElement('div');
    head.className = 'chat-head';
    const name = this.doc.createElement('span');
    name.className = 'chat-name';
    name.textContent = mine ? this.i18n.t('me') : m.name || '';
    const time = this.doc.createElement('span');
    time.className = 'chat-time';
    time.textContent = clock(m.time);
    head.append(name, time);
    const text = this.doc.createElement('div');
    text.className = 'chat-text';
    text.textContent = m.text || '';
    li.append(head, text);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(li);
    while (list.children.length > MAX_SHOWN) list.firstChild.remove();
    this.count++;
    this.$('chat-empty').hidden = true;
    if (atBottom || mine) list.scrollTop = list.scrollHeight;
    if (!this.open && !mine) this.unread++;
    this.drawCount();
  }

  drawCount() {
    this.$('chat-count').textContent = this.unread ? String(this.unread) : '';
    this.$('btn-chat').classList.toggle('unread', this.unread > 0);
  }
}
