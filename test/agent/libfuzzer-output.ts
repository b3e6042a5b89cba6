/** Parses libFuzzer's own account of coverage from its stderr (-print_coverage=1, -print_pcs=1). */

export interface FuncCoverage {
  covered: boolean;
  /** Covered edges (PCs) and all edges of the function, from "edges: a/b". */
  edges: number;
  total: number;
  name: string;
  location: string;
}

export interface LibFuzzerAccount {
  /** From the last status line ("#N DONE cov: C ..." or any "#N ... cov: C"). */
  finalCov: number | null;
  /** "Done N runs" */
  runs: number | null;
  /** COVERED_FUNC / UNCOVERED_FUNC lines, in the order printed (pc-table order). */
  funcs: FuncCoverage[];
  /** NEW_PC addresses as printed (run-time address of the next instruction). */
  newPcs: bigint[];
}

export function parseLibFuzzerOutput(stderr: string): LibFuzzerAccount {
  let finalCov: number | null = null;
  let runs: number | null = null;
  const funcs: FuncCoverage[] = [];
  const newPcs: bigint[] = [];
  for (const line of stderr.split('\n')) {
    const status = /^#\d+\s+\w+\s+cov: (\d+)/.exec(line);
    if (status) finalCov = Number(status[1]);
    const done = /^Done (\d+) runs/.exec(line);
    if (done) runs = Number(done[1]);
    const fn = /^(UN)?COVERED_FUNC: hits: \d+ edges: (\d+)\/(\d+) (\S+) (\S+)/.exec(line);
    if (fn) funcs.push({ covered: !fn[1], edges: Number(fn[2]), total: Number(fn[3]), name: fn[4]!, location: fn[5]! });
    const pc = /^\s*NEW_PC: (0x[0-9a-f]+)/.exec(line);
    if (pc) newPcs.push(BigInt(pc[1]!));
  }
  return { finalCov, runs, funcs, newPcs };
}

/**
 * The load bias that maps printed NEW_PC values onto the file's link-time PCs: the page-aligned b
 * (and the adjustment, 0 or 1, some libFuzzer versions print the next instruction's address) for
 * which every printed pc - adjust - b is in the PC list. Null when none fits.
 */
export function inferBias(newPcs: bigint[], pcs: BigUint64Array): { bias: bigint; adjust: bigint } | null {
  if (newPcs.length === 0) return null;
  const set = new Set(pcs);
  for (const adjust of [0n, 1n]) {
    const first = newPcs[0]! - adjust;
    for (const pc of pcs) {
      const b = first - pc;
      if (b < 0n || (b & 0xfffn) !== 0n) continue;
      if (newPcs.every((p) => set.has(p - adjust - b))) return { bias: b, adjust };
    }
  }
  return null;
}
