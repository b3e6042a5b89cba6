/**
 * The wait before asking the daemon again after a failed (or empty) answer: `first` ms after the
 * first failure, doubled after each further one up to `max`, back to `first` after a success.
 * The page's polls (blockers, fleet nodes) share it; the WebSocket's reconnects (conn.ts) add
 * jitter and wake-ups of their own.
 */
export class Backoff {
  private at = 0;
  private wait: number;
  constructor(private readonly first: number, private readonly max: number) {
    this.wait = first;
  }
  /** Whether the wait after the last failure is over (always, before any). */
  ready(now = Date.now()): boolean {
    return now >= this.at;
  }
  failed(now = Date.now()): void {
    this.at = now + this.wait;
    this.wait = Math.min(this.wait * 2, this.max);
  }
  succeeded(): void {
    this.at = 0;
    this.wait = this.first;
  }
}
