// Every user-visible string of the pages lives here, so a translation or a
// wording change never means hunting through the UI code.

const STORAGE_KEY = 'ducha.lang';

export const LANGS = ['zh', 'en'];

const zh = {
  'app.name': '督查',
  'app.title': '视频督查',
  'landing.title': '督查 · 视频督查会议系统',
  'landing.lead': '督查是信访局用于视频督查的会议系统：督查人员与县级单位面对面沟通案件办理情况，会议全程录像存证，供审计和纪检人员回放核查。',
  'landing.how': '请使用会议邀请链接加入',
  'landing.howDetail': '邀请链接由督查人员发送，形如 https://…/join/会议号#t=…，直接在浏览器中打开即可入会，无需安装软件。',
  'landing.f1': '浏览器直接入会，无需安装',
  'landing.f2': '全程录像，防篡改存证',
  'landing.f3': '适应县级单位网络条件',
  'landing.browser': '建议使用最新版 Chrome、Edge 或 360 极速浏览器。',
  'lang.switch': 'EN',
  'lang.switchTitle': 'Switch to English',
  'room.label': '会议号：{room}',
  'me': '我',
  'role.supervisor': '督查人员',
  'role.county': '县级单位',
  'role.observer': '观察员',
  'role.unknown': '参会人',
  'btn.mute': '静音',
  'btn.unmute': '取消静音',
  'btn.videoOff': '关闭视频',
  'btn.videoOn': '开启视频',
  'btn.members': '成员',
  'btn.leave': '离开',
  'btn.retry': '重试',
  'btn.joinWithoutMedia': '不开摄像头加入',
  'btn.rejoin': '重新加入',
  'btn.close': '关闭',
  'tile.muted': '已静音',
  'tile.videoOff': '视频已关闭',
  'tile.screen': '{name} 的共享屏幕',
  'members.title': '成员（{n}）',
  'members.me': '（我）',
  'members.micOn': '麦克风已开启',
  'members.camOff': '摄像头已关闭',
  'status.media': '正在打开摄像头和麦克风…',
  'status.connecting': '正在加入会议…',
  'status.waiting': '等待其他人加入…',
  'status.observer': '您以观察员身份加入，仅观看，不发送音视频',
  'status.noMedia': '您未开启摄像头和麦克风，仅观看',
  'banner.reconnecting': '连接中断，正在重新连接…',
  'banner.reconnected': '已重新连接',
  'banner.audioBlocked': '浏览器阻止了自动播放声音，请点击此处开启声音',
  'toast.joined': '{name} 加入了会议',
  'toast.left': '{name} 离开了会议',
  'err.title': '无法加入会议',
  'err.mediaTitle': '无法打开摄像头或麦克风',
  'err.deviceBusy': '摄像头或麦克风被其他程序占用，请关闭其他程序后重试',
  'err.permission': '您未允许使用摄像头和麦克风。请点击浏览器地址栏左侧的图标，允许使用摄像头和麦克风，然后点击“重试”',
  'err.noDevice': '未检测到摄像头或麦克风，请连接设备后点击“重试”',
  'err.insecure': '当前网址不安全（不是 https），浏览器不允许使用摄像头。请联系督查人员获取 https 开头的邀请链接',
  'err.unsupported': '当前浏览器不支持视频会议，请使用最新版 Chrome、Edge 或 360 极速浏览器打开邀请链接',
  'err.invalidLink': '邀请链接无效或已过期，请联系督查人员重新获取',
  'err.replaced': '您已在其他窗口加入',
  'err.replacedDetail': '同一邀请链接只能在一个窗口中使用。如需在本窗口继续，请点击“重新加入”',
  'err.version': '页面版本与服务器不一致，请刷新页面后重试',
  'err.forbidden': '您没有执行此操作的权限',
  'err.server': '服务器出现问题，请稍后点击“重试”',
  'err.media': '无法打开摄像头或麦克风，请检查设备后点击“重试”',
  'room.session': '{title}',
  'room.sessionCase': '{title} · 信访件 {case}',
  'btn.chat': '聊天',
  'btn.cancel': '取消',
  'btn.send': '发送',
  'rec.on': '录制中',
  'rec.title': '本次督查正在录制，录像将作为证据保存',
  'lobby.title': '候会室',
  'lobby.text': '请在候会室等候，督查人员准入后自动进入',
  'lobby.detail': '您可以先检查摄像头画面。准入前，其他参会方看不到也听不到您。',
  'lobby.case': '信访件编号：{case}',
  'lobby.listTitle': '候会室（{n}）',
  'lobby.admit': '准入',
  'chat.title': '聊天',
  'chat.placeholder': '输入消息，按回车发送',
  'chat.empty': '暂无消息。聊天内容会记入督查记录。',
  'chat.lobby': '准入后才能发送消息',
  'mod.muted': '您已被督查人员静音',
  'mod.mute': '静音',
  'mod.unmute': '取消静音',
  'mod.remove': '移出',
  'mod.removeTitle': '移出参会方',
  'mod.removeConfirm': '确定将“{name}”移出本次督查？其邀请链接将同时失效，不能再次入会。',
  'mod.mutedChip': '已被静音',
  'toast.modMuted': '您已被督查人员静音',
  'toast.modUnmuted': '督查人员已解除静音，点击“取消静音”即可发言',
  'toast.lobby': '{name} 正在候会室等候',
  'toast.admitted': '督查人员已准入，正在进入会议',
  'toast.sessionLive': '督查已开始',
  'toast.recordingOn': '已开始录制',
  'toast.recordingOff': '已停止录制',
  'toast.locked': '会议已锁定，新加入者需在候会室等候',
  'toast.unlocked': '会议已解锁',
  'err.badAction': '操作未成功：该参会方可能已离开',
  'err.removedTitle': '您已离开本次督查',
  'err.removed': '您已被督查人员移出本次督查',
  'err.removedDetail': '如有疑问，请联系督查人员。',
  'err.endedTitle': '督查已结束',
  'err.sessionEnded': '本次督查已结束',
  'err.sessionEndedDetail': '感谢参加，您可以关闭此页面。',
  'err.revoked': '邀请链接已被撤销，请联系督查人员获取新的链接',
  'err.notYetValid': '督查尚未开始：邀请链接在预约开始前 30 分钟生效，请到时再打开此链接',
  'left.title': '您已离开会议',
  'left.detail': '如需再次加入，请点击“重新加入”或重新打开邀请链接',
};

const en = {
  'app.name': 'ducha',
  'app.title': 'Video supervision',
  'landing.title': 'ducha · video supervision sessions',
  'landing.lead': 'ducha is the petition bureau’s video supervision system: supervisors talk face to face with county offices about their cases, every session is recorded as evidence, and auditors can replay and verify it.',
  'landing.how': 'Please join with your meeting invitation link',
  'landing.howDetail': 'The supervisor sends you a link like https://…/join/ROOM#t=…; open it in your browser to join. Nothing to install.',
  'landing.f1': 'Join from the browser, nothing to install',
  'landing.f2': 'Every session recorded, tamper-evident',
  'landing.f3': 'Works on county office networks',
  'landing.browser': 'Use a recent Chrome, Edge or 360 browser.',
  'lang.switch': '中文',
  'lang.switchTitle': '切换到中文',
  'room.label': 'Session {room}',
  'me': 'Me',
  'role.supervisor': 'Supervisor',
  'role.county': 'County office',
  'role.observer': 'Observer',
  'role.unknown': 'Participant',
  'btn.mute': 'Mute',
  'btn.unmute': 'Unmute',
  'btn.videoOff': 'Stop video',
  'btn.videoOn': 'Start video',
  'btn.members': 'Participants',
  'btn.leave': 'Leave',
  'btn.retry': 'Retry',
  'btn.joinWithoutMedia': 'Join without camera',
  'btn.rejoin': 'Join again',
  'btn.close': 'Close',
  'tile.muted': 'Muted',
  'tile.videoOff': 'Video off',
  'tile.screen': '{name}’s screen',
  'members.title': 'Participants ({n})',
  'members.me': ' (me)',
  'members.micOn': 'Microphone on',
  'members.camOff': 'Camera off',
  'status.media': 'Opening camera and microphone…',
  'status.connecting': 'Joining the session…',
  'status.waiting': 'Waiting for others to join…',
  'status.observer': 'You joined as an observer: you watch and listen only',
  'status.noMedia': 'Camera and microphone are off; you watch and listen only',
  'banner.reconnecting': 'Connection lost, reconnecting…',
  'banner.reconnected': 'Reconnected',
  'banner.audioBlocked': 'The browser blocked sound. Click here to turn it on',
  'toast.joined': '{name} joined',
  'toast.left': '{name} left',
  'err.title': 'Cannot join the session',
  'err.mediaTitle': 'Cannot open the camera or microphone',
  'err.deviceBusy': 'The camera or microphone is used by another program. Close the other program and retry',
  'err.permission': 'Camera and microphone access was refused. Click the icon left of the address bar, allow camera and microphone, then click Retry',
  'err.noDevice': 'No camera or microphone found. Connect one and click Retry',
  'err.insecure': 'This address is not secure (not https), so the browser blocks the camera. Ask the supervisor for an https invitation link',
  'err.unsupported': 'This browser cannot join video sessions. Open the link in a recent Chrome, Edge or 360 browser',
  'err.invalidLink': 'The invitation link is invalid or has expired. Ask the supervisor for a new one',
  'err.replaced': 'You joined from another window',
  'err.replacedDetail': 'One invitation link works in one window at a time. Click Join again to continue here',
  'err.version': 'This page does not match the server version. Reload the page and retry',
  'err.forbidden': 'You are not allowed to do this',
  'err.server': 'The server had a problem. Please retry in a moment',
  'err.media': 'Cannot open the camera or microphone. Check the devices and click Retry',
  'room.session': '{title}',
  'room.sessionCase': '{title} · case {case}',
  'btn.chat': 'Chat',
  'btn.cancel': 'Cancel',
  'btn.send': 'Send',
  'rec.on': 'Recording',
  'rec.title': 'This session is being recorded and kept as evidence',
  'lobby.title': 'Lobby',
  'lobby.text': 'Please wait in the lobby: you join automatically once the supervisor admits you',
  'lobby.detail': 'You can check your camera meanwhile. Until you are admitted, nobody sees or hears you.',
  'lobby.case': 'Case number: {case}',
  'lobby.listTitle': 'Lobby ({n})',
  'lobby.admit': 'Admit',
  'chat.title': 'Chat',
  'chat.placeholder': 'Type a message and press Enter',
  'chat.empty': 'No messages yet. Chat is kept in the session record.',
  'chat.lobby': 'You can chat once admitted',
  'mod.muted': 'The supervisor muted you',
  'mod.mute': 'Mute',
  'mod.unmute': 'Unmute',
  'mod.remove': 'Remove',
  'mod.removeTitle': 'Remove participant',
  'mod.removeConfirm': 'Remove “{name}” from this session? Its invitation link stops working and cannot be used again.',
  'mod.mutedChip': 'Muted',
  'toast.modMuted': 'The supervisor muted you',
  'toast.modUnmuted': 'The supervisor lifted your mute: click Unmute to speak',
  'toast.lobby': '{name} is waiting in the lobby',
  'toast.admitted': 'Admitted by the supervisor, joining',
  'toast.sessionLive': 'The session has started',
  'toast.recordingOn': 'Recording started',
  'toast.recordingOff': 'Recording stopped',
  'toast.locked': 'Session locked: newcomers wait in the lobby',
  'toast.unlocked': 'Session unlocked',
  'err.badAction': 'That did not work: the participant may have left',
  'err.removedTitle': 'You left this session',
  'err.removed': 'The supervisor removed you from this session',
  'err.removedDetail': 'If you have questions, contact the supervisor.',
  'err.endedTitle': 'Session over',
  'err.sessionEnded': 'This session has ended',
  'err.sessionEndedDetail': 'Thank you for taking part. You can close this page.',
  'err.revoked': 'This invitation link was revoked. Ask the supervisor for a new one',
  'err.notYetValid': 'Too early: the link opens 30 minutes before the scheduled start. Please open it again then',
  'left.title': 'You left the session',
  'left.detail': 'To join again, click Join again or reopen the invitation link',
};

export const MESSAGES = Object.freeze({ zh: Object.freeze(zh), en: Object.freeze(en) });

function storedLang() {
  try {
    const v = window.localStorage.getItem(STORAGE_KEY);
    return LANGS.includes(v) ? v : null;
  } catch {
    // Storage can be disabled (private mode, policies); Chinese is the default anyway.
    return null;
  }
}

// createI18n returns the translator for a page. Chinese is the default for
// everyone: the audience is Chinese officials whose browsers are often set
// to English by an IT department, so navigator.language is not a signal.
export function createI18n() {
  let lang = storedLang() || 'zh';
  const listeners = [];

  function t(key, params) {
    let s = MESSAGES[lang][key] ?? MESSAGES.zh[key] ?? key;
    if (params) {
      for (const [k, v] of Object.entries(params)) s = s.replaceAll(`{${k}}`, String(v));
    }
    return s;
  }

  // apply fills every element marked data-i18n (text), data-i18n-title and
  // data-i18n-aria (aria-label) below root.
  function apply(root = document) {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
    for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
    if (document.body && document.body.dataset.i18nDocTitle) document.title = t(document.body.dataset.i18nDocTitle);
  }

  function setLang(next) {
    if (!LANGS.includes(next) || next === lang) return;
    lang = next;
    try {
      window.localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // Not remembered across visits; the switch still applies to this page.
    }
    apply();
    for (const fn of listeners) fn(lang);
  }

  return {
    t,
    apply,
    setLang,
    lang: () => lang,
    toggle: () => setLang(lang === 'zh' ? 'en' : 'zh'),
    onChange: (fn) => listeners.push(fn),
  };
}
