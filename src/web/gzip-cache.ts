/**
 * Gzipped source files kept between requests, least recently used first out, within a byte
 * budget: a large file (sqlite3.c, 9.5 MB) is compressed once, not on every request of every tab.
 * Keys name the file's contents (path, size, mtime), so a changed file is a miss, never stale.
 */

/** Memory for gzipped source files kept between requests. */
const SOURCE_GZ_CACHE_BYTES = 64 * 1024 * 1024;

export class GzipCache {
  // A Map iterates in insertion order: re-inserting on every use keeps the least recent first.
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = SOURCE_GZ_CACHE_BYTES) {}

  /** The cached body, now the most recently used. */
  get(key: string): Buffer | undefined {
    const gz = this.entries.get(key);
    if (gz) this.set(key, gz);
    return gz;
  }

  /** Keeps `gz` unless it alone would take over a quarter of the budget; evicts the least recent beyond it. */
  set(key: string, gz: Buffer) {
    if (gz.length > this.maxBytes / 4) return;
    const old = this.entries.get(key);
    if (old) this.bytes -= old.length;
    this.entries.delete(key);
    this.entries.set(key, gz);
    this.bytes += gz.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }
}
