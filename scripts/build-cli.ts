/**
 * Bundles the DWARF reader that `covd symbolize` loads (dist/src/dwarf/index.js and the reader's
 * modules it imports) into that one file, with esbuild. Run by `npm run build`, after tsc.
 *
 * Node 20's ES-module loader costs about a millisecond per module before any code runs, and a
 * one-address `covd symbolize` loaded about thirty (bench/NOTES-cli.md). The bundle stays in
 * dist/src/dwarf/, so what the reader finds beside itself (kernels.wasm, demangle.wasm through
 * import.meta.url) and its imports of modules outside the reader resolve as before; those
 * (src/contracts, src/util, packages) stay separate modules, so their classes (DebugInfoError,
 * UntrustedFileError) are the ones everyone else sees. Without this step (tsc alone) index.js
 * re-exports the modules and behaves the same.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dwarf = join(root, 'dist', 'src', 'dwarf');
const out = join(dwarf, 'index.js');
// tsc's own index.js, kept beside the bundle: tsc builds incrementally and emits index.js again
// only when index.ts changes, while the reader's other modules may have changed since.
const entry = join(dwarf, 'index.entry.js');
const BANNER = '// build-cli: bundle of the DWARF reader (scripts/build-cli.ts)';
if (existsSync(out)) {
  const text = readFileSync(out, 'utf8');
  if (!text.startsWith(BANNER)) writeFileSync(entry, text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n'));
}
if (!existsSync(entry)) {
  console.log('build-cli: no dist/src/dwarf/index.js; skipping');
} else {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    outfile: out,
    allowOverwrite: true,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    banner: { js: BANNER },
    logLevel: 'warning',
    plugins: [{
      name: 'reader-only',
      setup(build) {
        // Only the reader's own modules go in; anything else keeps its import as written, which
        // still resolves from dist/src/dwarf/ since the bundle is there.
        build.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind === 'entry-point') return undefined;
          if (!args.path.startsWith('.')) return { path: args.path, external: true };
          const target = resolve(args.resolveDir, args.path);
          if (dirname(target) === dwarf) return undefined;
          const fromDwarf = relative(dwarf, target).split(sep).join('/');
          return { path: fromDwarf.startsWith('.') ? fromDwarf : `./${fromDwarf}`, external: true };
        });
      },
    }],
  });
  console.log('build-cli: dist/src/dwarf/index.js bundled');
}
