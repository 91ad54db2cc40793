// What the invitation link carries, and what the page says when the link
// or the session cannot go on.

// parseLink reads /join/{room}#t=TOKEN. The token stays in the fragment:
// browsers never send fragments to servers or in Referer headers.
export function parseLink(loc) {
  const m = /^\/join\/([^/]+)\/?$/.exec(loc.pathname);
  let room = '';
  if (m) {
    try {
      room = decodeURIComponent(m[1]);
    } catch {
      room = '';
    }
  }
  const token = new URLSearchParams(loc.hash.replace(/^#/, '')).get('t') || '';
  return { room, token };
}

// fatalDialog is the dialog for an ending the page cannot recover from by
// itself. Link problems offer no button: only a new link helps, and the text
// says whom to ask. onRejoin reloads the page.
export function fatalDialog(code, onRejoin) {
  const rejoin = { key: 'btn.rejoin', primary: true, onClick: onRejoin };
  const specs = {
    invalid_link: { textKey: 'err.invalidLink' },
    invalid_token: { textKey: 'err.invalidLink' },
    token_expired: { textKey: 'err.invalidLink' },
    wrong_room: { textKey: 'err.invalidLink' },
    unsupported_version: { textKey: 'err.version', actions: [rejoin] },
    unsupported: { textKey: 'err.unsupported' },
    replaced: { titleKey: '', textKey: 'err.replaced', detailKey: 'err.replacedDetail', actions: [rejoin] },
    // Supervision sessions: the supervisor's decisions end the page for good.
    removed: { titleKey: 'err.removedTitle', textKey: 'err.removed', detailKey: 'err.removedDetail' },
    session_ended: { titleKey: 'err.endedTitle', textKey: 'err.sessionEnded', detailKey: 'err.sessionEndedDetail' },
    invitation_revoked: { textKey: 'err.revoked' },
    invitation_not_yet_valid: { textKey: 'err.notYetValid', actions: [{ ...rejoin, key: 'btn.retry' }] },
  };
  return { titleKey: 'err.title', ...(specs[code] || { textKey: 'err.server', actions: [rejoin] }) };
}
