/**
 * A virtual list: fixed-height rows, only the visible ones (plus a margin) exist in the DOM.
 * Rows are reused between renders and updated in place, so live updates never flicker and
 * 5,000-row trees scroll like 50-row ones.
 */
export interface VListSource {
  count(): number;
  /** Fills a (reused) row element for row i. */
  render(row: HTMLElement, i: number): void;
}

const OVERSCAN = 8;

export class VList {
  readonly root: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly rows = new Map<number, HTMLElement>();
  private pool: HTMLElement[] = [];
  private raf = 0;

  constructor(private readonly source: VListSource, readonly rowHeight: number, cls: string) {
    this.root = document.createElement('div');
    this.root.className = 'vlist ' + cls;
    this.root.setAttribute('role', 'list');
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    this.root.append(this.spacer);
    this.root.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.root);
  }

  /** Re-renders visible rows (data changed); cheap, call on every update. */
  refresh(): void {
    this.schedule(true);
  }

  private dirty = false;
  private schedule(dirty = false): void {
    this.dirty ||= dirty;
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.paint();
    });
  }

  /** Draws synchronously, re-rendering every visible row (the data changed shape). */
  draw(): void {
    this.dirty = true;
    this.paint();
  }

  private paint(): void {
    const n = this.source.count();
    const h = this.rowHeight;
    this.spacer.style.height = `${n * h}px`;
    const top = this.root.scrollTop;
    const height = this.root.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / h) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / h) + OVERSCAN);
    for (const [i, row] of this.rows) {
      if (i < first || i >= last) {
        this.rows.delete(i);
        row.remove();
        this.pool.push(row);
      }
    }
    const dirty = this.dirty;
    this.dirty = false;
    for (let i = first; i < last; i++) {
      let row = this.rows.get(i);
      const fresh = !row;
      if (!row) {
        row = this.pool.pop() ?? document.createElement('div');
        row.className = 'vrow';
        row.style.top = `${i * h}px`;
        row.style.height = `${h}px`;
        this.rows.set(i, row);
        this.root.append(row);
      }
      if (fresh || dirty) {
        row.dataset.i = String(i);
        this.source.render(row, i);
      }
    }
  }

  scrollToRow(i: number): void {
    // Not laid out yet (the view is being built): scroll once it is on screen.
    if (!this.root.isConnected || this.root.clientHeight === 0) {
      requestAnimationFrame(() => {
        if (this.root.isConnected && this.root.clientHeight > 0) this.scrollToRow(i);
      });
      return;
    }
    const h = this.rowHeight;
    const top = this.root.scrollTop, height = this.root.clientHeight;
    if (i * h < top || (i + 1) * h > top + height) this.root.scrollTop = Math.max(0, i * h - height / 3);
    this.schedule(true);
  }
}
