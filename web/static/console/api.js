// The console's client of the HTTP API (docs/api.md). It keeps the CSRF
// token, asks for messages in the page's language, and turns every failure
// into an ApiError carrying the API's stable code.

export const API_BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message, field = '', retryAfter = 0) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

const enc = encodeURIComponent;

// createApi returns the API client. onUnauthenticated is called when a
// request other than sign-in finds the sign-in gone (expired, password
// changed, signed out in another tab), so the page can show the login form.
export function createApi({ fetchFn = (...a) => globalThis.fetch(...a), acceptLanguage = () => 'zh-CN', onUnauthenticated = () => {} } = {}) {
  // The cookie is HttpOnly; the CSRF token comes from the login answer or
  // /auth/me and lives only in this closure. A reload asks /auth/me again.
  let csrf = '';

  async function request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: 'application/json', 'Accept-Language': acceptLanguage() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
    let res;
    try {
      res = await fetchFn(API_BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, 'network', err && err.message);
    }
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (res.ok) return data;
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || '', e.field || '',
      Number(res.headers.get('Retry-After')) || 0);
    if (auth && res.status === 401) {
      csrf = '';
      onUnauthenticated(err);
    }
    throw err;
  }

  const get = (p) => request('GET', p);
  const post = (p, body) => request('POST', p, body);
  const s = (id) => `/sessions/${enc(id)}`;

  return {
    hasToken: () => csrf !== '',
    async login(username, password) {
      const r = await request('POST', '/auth/login', { username, password }, { auth: false });
      csrf = r.csrfToken;
      return r;
    },
    // me answers the signed-in account, or null when nobody is signed in.
    async me() {
      try {
        const r = await request('GET', '/auth/me', undefined, { auth: false });
        csrf = r.csrfToken;
        return r;
      } catch (err) {
        if (err.status === 401) return null;
        throw err;
      }
    },
    async logout() {
      try {
        await request('POST', '/auth/logout', undefined, { auth: false });
      } finally {
        csrf = '';
      }
    },
    listSessions: (params = {}) => {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
      const qs = q.toString();
      return get(`/sessions${qs ? `?${qs}` : ''}`);
    },
    createSession: (body) => post('/sessions', body),
    getSession: (id) => get(s(id)),
    cancelSession: (id) => post(`${s(id)}/cancel`),
    invitations: (id) => get(`${s(id)}/invitations`),
    issueInvitations: (id) => post(`${s(id)}/invitations`),
    revokeInvitation: (id, inv) => post(`${s(id)}/invitations/${enc(inv)}/revoke`),
    qrURL: (id, inv) => `${API_BASE}${s(id)}/invitations/${enc(inv)}/qr.svg`,
    joinLink: (id) => get(`${s(id)}/join-link`),
    participants: (id) => get(`${s(id)}/participants`),
    moderate: (id, action, target) => post(`${s(id)}/moderation`, target ? { action, target } : { action }),
    events: (id, afterSeq = 0, limit = 200) => get(`${s(id)}/events?afterSeq=${afterSeq}&limit=${limit}`),
    attendance: (id) => get(`${s(id)}/attendance`),
    overview: () => get('/overview'),
  };
}

// errorText turns an ApiError into a sentence for the user: the API's own
// message (already in the page's language) where it explains the problem,
// the console's wording where the code says more than the message.
export function errorText(err, t) {
  if (!(err instanceof ApiError)) return t('cerr.generic', { msg: (err && err.message) || String(err) });
  switch (err.code) {
    case 'network':
      return t('cerr.network');
    case 'bad_credentials':
      return t('login.badCredentials');
    case 'account_locked':
      return t('login.locked', { minutes: Math.max(1, Math.ceil((err.retryAfter || 60) / 60)) });
    case 'unauthenticated':
      return t('login.expired');
    case 'forbidden':
    case 'csrf':
      return err.message || t('cerr.forbidden');
    case 'not_found':
      return err.message || t('cerr.notFound');
    case 'unavailable':
      return err.message || t('cerr.unavailable');
    default:
      return err.message || t('cerr.generic', { msg: err.code });
  }
}
