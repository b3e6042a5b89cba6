/**
 * Syntax colours for the source view: CodeMirror's default highlight style with every colour
 * darkened until it reaches WCAG AA contrast (4.5:1) on the darkest line tint it can sit on
 * (uncovered, partly covered, covered, new; style.css), so coverage backgrounds never make code
 * hard to read.
 */
import { HighlightStyle, defaultHighlightStyle } from '@codemirror/language';

/** The darkest of the line backgrounds (--new-bg, #ece4ff, and --miss-bg, #fde4e4, are close): its relative luminance. */
const DARKEST_BG = luminance([0xec, 0xe4, 0xff]);
const AA = 4.5;

function channel(v: number): number {
  const c = v / 255;
  return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function luminance([r, g, b]: number[]): number {
  return 0.2126 * channel(r!) + 0.7152 * channel(g!) + 0.0722 * channel(b!);
}

function parse(c: string): number[] | null {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c.trim());
  if (!m) return null;
  const h = m[1]!.length === 3 ? [...m[1]!].map((x) => x + x).join('') : m[1]!;
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

/** The colour, darkened in steps until its contrast on the line tints is at least AA. */
export function readable(color: string): string {
  let rgb = parse(color);
  if (!rgb) return color;
  while ((DARKEST_BG + 0.05) / (luminance(rgb) + 0.05) < AA) rgb = rgb.map((v) => Math.floor(v * 0.9));
  return '#' + rgb.map((v) => v.toString(16).padStart(2, '0')).join('');
}

export const readableHighlightStyle = HighlightStyle.define(
  defaultHighlightStyle.specs.map((s) => (typeof s.color === 'string' ? { ...s, color: readable(s.color) } : s)),
);
