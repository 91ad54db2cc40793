// The replay page's client of the HTTP API (recording/replay/API.md). Like
// the console's, it keeps the CSRF token in a closure and turns failures into
// ApiError with the API's stable code.

export const API_BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const enc = encodeURIComponent;

export function createApi({ fetchFn = (...a) => globalThis.fetch(...a), acceptLanguage = () => 'zh-CN', onUnauthenticated = () => {} } = {}) {
  let csrf = '';

  async function request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: 'application/json', 'Accept-Language': acceptLanguage() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
    let res;
    try {
      res = await fetchFn(API_BASE + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin', cache: 'no-store',
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
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || '', Number(res.headers.get('Retry-After')) || 0);
    if (auth && res.status === 401) {
      csrf = '';
      onUnauthenticated(err);
    }
    throw err;
  }

  const rec = (id) => `/recordings/${enc(id)}`;
  return {
    async login(username, password) {
      const r = await request('POST', '/auth/login', { username, password }, { auth: false });
      csrf = r.csrfToken;
      return r;
    },
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
    search(params = {}) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
      const qs = q.toString();
      return request('GET', `/recordings${qs ? `?${qs}` : ''}`);
    },
    detail: (id) => request('GET', rec(id)),
    verify: (id) => request('GET', `${rec(id)}/verify`),
    segmentURL: (id, index) => `${API_BASE}${rec(id)}/segments/${index}`,
    exportURL: (id) => `${API_BASE}${rec(id)}/export`,
  };
}

// errorText turns an error into a sentence for the user.
export function errorText(err, t) {
  if (!(err instanceof ApiError)) return t('err.generic', { msg: (err && err.message) || String(err) });
  switch (err.code) {
    case 'network':
      return t('err.network');
    case 'bad_credentials':
      return t('login.badCredentials');
    case 'account_locked':
      return t('login.locked', { minutes: Math.max(1, Math.ceil((err.retryAfter || 60) / 60)) });
    case 'unauthenticated':
      return t('login.expired');
    case 'forbidden':
      return err.message || t('err.forbidden');
    case 'not_found':
      return err.message || t('err.notFound');
    default:
      return err.message || t('err.generic', { msg: err.code });
  }
}

// dayStart turns a date input's value (YYYY-MM-DD, the user's local day)
// into an RFC 3339 time at local midnight; plusDays moves it.
export function dayStart(value, plusDays = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
  if (!m) return '';
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays, 0, 0, 0);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T00:00:00${sign}${pad(off / 60)}:${pad(off % 60)}`;
}
