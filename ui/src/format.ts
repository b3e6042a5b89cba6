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

/** "3s ago", "5m ago", "2h ago", "4d ago". */
export function ago(ms: number | null, now = Date.now()): string {
  if (ms == null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ago`;
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
