/** Number, time and percentage formatting shared by all views. */

export function pct(covered: number, total: number): string {
  if (total === 0) return '–';
  const p = (100 * covered) / total;
  return (p >= 99.95 && covered < total ? 99.9 : p).toFixed(1) + '%';
}

/** 1234567 -> "1,234,567"; large counts stay exact because users compare them with the API. */
export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Compact form for tight cells: 1.2M, 34.5k. */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
  return String(Math.round(n));
}

/** Relative times, one style everywhere: "14 s ago", "5 min ago", "2 h 13 min ago", "4 d ago". */
export function ago(ms: number | null, now = Date.now()): string {
  if (ms == null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// Absolute times, one format everywhere (cards, tooltips, the chart's axis and legend), in the
// browser's locale: its order, separators and 12/24-hour clock.
const fmtTime = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
const fmtHm = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const fmtDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fmtFull = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** A moment: its time of day (with seconds) when it is today, else its date and time. */
export function when(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  return sameDay(d, new Date(now)) ? fmtTime.format(d) : fmtFull.format(d);
}

/** The full form, for tooltips and the chart's legend. */
export function fullTime(ms: number): string {
  return fmtFull.format(new Date(ms));
}

/** A chart tick: time with seconds for spans under an hour, without under two days, else day and time. */
export function tick(ms: number, spanMs: number): string {
  const d = new Date(ms);
  if (spanMs < 3600_000) return fmtTime.format(d);
  if (spanMs < 2 * 86400_000) return fmtHm.format(d);
  return `${fmtDay.format(d)} ${fmtHm.format(d)}`;
}

export function hex(n: number): string {
  return '0x' + n.toString(16);
}

/** Creates an element with a class and optional text; the views build DOM with this, never innerHTML with data. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/** Sets textContent only when it changed, so live updates do not touch unchanged DOM. */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}
