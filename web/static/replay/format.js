// Dates and durations for people, in the page's language.

export function dateTime(iso, locale) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return new Intl.DateTimeFormat(locale, {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(d);
}

export function clockTime(iso, locale) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
}

// duration renders seconds as 1小时05分 / 1 h 05 min / 42秒.
export function duration(seconds, lang) {
  const s = Math.max(0, Math.round(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (lang === 'en') {
    if (h) return `${h} h ${String(m).padStart(2, '0')} min`;
    if (m) return `${m} min ${String(r).padStart(2, '0')} s`;
    return `${r} s`;
  }
  if (h) return `${h}小时${String(m).padStart(2, '0')}分`;
  if (m) return `${m}分${String(r).padStart(2, '0')}秒`;
  return `${r}秒`;
}
