/**
 * The source index: what symbolizing an executable's PCs yields, and what the registry, the
 * store, the web server and the browser all read. Mirrors the seed's std.debug.Coverage:
 * interned directories and files, one location per PC. Everything numeric is a typed array so
 * results transfer between threads without copying.
 */

/** Sentinel in pcFile / pcFunction: no file or function known. */
export const NONE = 0xffffffff;

export interface SourceIndex {
  /** The build-id read from the executable's ELF notes (not from anyone's word). */
  buildId: string | null;
  /** Set by the daemon: pcTableHash of the PCs this index answers, checked on every restore. */
  pcsHash?: string;
  /** Interned directory names (absolute where the debug info makes them so). */
  directories: string[];
  /** File basenames (may contain '/' when the debug info names a relative subpath); fileDirs[i] indexes directories. */
  files: string[];
  fileDirs: Uint32Array;
  /**
   * Functions, interned: names[i], declared in functions.file[i] at functions.line[i]. Names are
   * shown as llvm-symbolizer-14 prints them: C++ (Itanium) and Rust names demangled, e.g.
   * `parse::Lexer::next()`. linkageNames[i] is the name as the binary has it (symbol table, else
   * DW_AT_linkage_name), e.g. `_ZN5parse5Lexer4nextEv`, where it differs from names[i], and ''
   * where it does not; linkageNames is absent when no name was demangled (a C program, or the
   * demangler off or not built). So `linkageNames?.[i] || names[i]` is always the linkage name.
   */
  functions: { names: string[]; file: Uint32Array; line: Uint32Array; linkageNames?: string[] };
  /** Per PC, in the request's order: file index (NONE = unknown, shown as '??'), line (0 = unknown), column, function index. */
  pcFile: Uint32Array;
  pcLine: Uint32Array;
  pcColumn: Uint32Array;
  pcFunction: Uint32Array;
  /**
   * Per PC, only when the resolve was asked for it (ResolveOptions.inlines): the function index
   * of the innermost DW_TAG_inlined_subroutine covering the PC (named through its
   * DW_AT_abstract_origin, as llvm-symbolizer names the innermost --inlines frame), NONE where
   * the PC is not in inlined code. pcFunction stays the physical, outermost function (what
   * llvm-symbolizer --no-inlines and libFuzzer's -print_coverage count).
   */
  pcInlined?: Uint32Array;
  /**
   * With pcInlined, per PC: where the physical function calls the inlined code, as the outermost
   * frame of llvm-symbolizer --inlines shows it (the DW_AT_call_file / DW_AT_call_line of the
   * outermost DW_TAG_inlined_subroutine): a file index (NONE = unknown) and a line (0 = unknown).
   * NONE / 0 where the PC is not in inlined code.
   */
  pcCallFile?: Uint32Array;
  pcCallLine?: Uint32Array;
}
