/**
 * Orderings and searches of sorted numbers, shared by the reader: the one upper-bound search,
 * and a stable ordering without a comparator (the TypeScript twin of the kernels' orderValues;
 * callers go through kernelsOrTwins().orderValues).
 */

/**
 * std::upper_bound: the first index in [lo, hi) whose value is above key (hi when none), in an
 * ascending arr. The last value at or below key is at the result minus one.
 */
export function upperBound(arr: ArrayLike<number>, key: number, lo = 0, hi = arr.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key < arr[mid]!) hi = mid; else lo = mid + 1;
  }
  return lo;
}

/**
 * Indices 0..count-1 of values ordered by value, equal values by index. When value offsets and
 * indices fit in 52 bits together, each is packed into one double and sorted by the engine's
 * numeric sort, which is much faster than comparator calls before the JIT has warmed up (a
 * symbolizer thread's first request is all cold code).
 */
export function stableOrder(values: Float64Array, count = values.length): Uint32Array {
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
