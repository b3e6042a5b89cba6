/**
 * Stable ordering of numbers without a comparator: when value offsets and indices fit in 52
 * bits together, each is packed into one double and sorted by the engine's numeric sort, which
 * is much faster than comparator calls before the JIT has warmed up (a symbolizer thread's
 * first request is all cold code).
 */
import { kernels } from './kernels.js';

/** Indices 0..count-1 of values ordered by value, equal values by index. */
export function stableOrder(values: Float64Array, count = values.length): Uint32Array {
  // Addresses (the usual values) are radix-sorted by the WebAssembly kernel.
  const fast = count >= 64 ? kernels()?.orderValues(values.subarray(0, count)) : null;
  if (fast) return fast;
  const order = new Uint32Array(count);
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < count; i++) { const v = values[i]!; if (v < min) min = v; if (v > max) max = v; }
  const idxBits = Math.max(1, Math.ceil(Math.log2(count + 1)));
  if (count > 0 && idxBits <= 24 && max - min < 2 ** (52 - idxBits)) {
    const scale = 2 ** idxBits;
    const keys = new Float64Array(count);
    for (let i = 0; i < count; i++) keys[i] = (values[i]! - min) * scale + i;
    keys.sort();
    for (let j = 0; j < count; j++) order[j] = keys[j]! % scale;
    return order;
  }
  for (let i = 0; i < count; i++) order[i] = i;
  return order.sort((a, b) => values[a]! - values[b]! || a - b);
}
