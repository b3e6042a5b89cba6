/**
 * Bundles the browser client (ui/) into dist/ui with esbuild. Run by `npm run build`.
 * Until the client exists this is a no-op, so the build stays green.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = join(root, 'ui', 'src', 'main.ts');
if (!existsSync(entry)) {
  console.log('build-ui: no ui/src/main.ts yet; skipping');
} else {
  const esbuild = await import('esbuild');
  const out = join(root, 'dist', 'ui');
  mkdirSync(out, { recursive: true });
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: 'es2022',
    outdir: out,
    logLevel: 'warning',
  });
  console.log(`build-ui: bundled ${entry} -> ${out}`);
}
