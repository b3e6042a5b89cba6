/**
 * Bundles the browser client (ui/) into dist/ui with esbuild: main.js (+ map), main.css (the
 * client's styles, uPlot's and CodeMirror-independent ones) and index.html. Run by `npm run build`.
 * Everything the page needs is in dist/ui: it never loads anything from elsewhere.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = join(root, 'ui', 'src', 'main.ts');
if (!existsSync(entry)) {
  console.log('build-ui: no ui/src/main.ts yet; skipping');
} else {
  const esbuild = await import('esbuild');
  const out = join(root, 'dist', 'ui');
  // Start clean so stale chunks never get served.
  if (existsSync(out)) for (const f of readdirSync(out)) rmSync(join(out, f), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: 'es2022',
    outdir: out,
    // CSS imported from TypeScript (ours and uPlot's) is collected into main.css.
    loader: { '.css': 'css' },
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
  });
  copyFileSync(join(root, 'ui', 'index.html'), join(out, 'index.html'));
  // The page's Content-Security-Policy has no 'unsafe-eval' (src/web/server.ts): code that builds
  // functions from strings would be refused there (and logged as an error on every load).
  for (const f of Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))) {
    const hit = /\bnew Function\s*\(|(?<![\w$.])eval\s*\(/.exec(readFileSync(f, 'utf8'));
    if (hit) throw new Error(`build-ui: ${f} evaluates code (${hit[0]}…); the page's CSP forbids it: bundle a module that does not`);
  }
  const sizes = Object.entries(result.metafile.outputs)
    .filter(([f]) => !f.endsWith('.map'))
    .map(([f, o]) => `${f.split('/').pop()} ${(o.bytes / 1024).toFixed(0)} KiB`);
  console.log(`build-ui: ${sizes.join(', ')} -> ${out}`);
}
