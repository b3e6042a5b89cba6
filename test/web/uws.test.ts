/** uWebSockets.js loads natively here, and its silent ws-based fallback is refused loudly. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isNativeUws, loadUws, unsupportedNode } from '../../src/web/uws.js';

const execFileP = promisify(execFile);

describe('web: uWebSockets.js loader', function () {
  this.timeout(60_000);

  it('loads the native binary', () => {
    const uws = loadUws();
    expect(isNativeUws(uws)).to.equal(true);
  });

  it('fails at start-up, naming the cause, when the package falls back to its ws shim', async () => {
    const server = fileURLToPath(new URL('../../src/web/server.js', import.meta.url));
    const registry = fileURLToPath(new URL('../../src/daemon/registry.js', import.meta.url));
    const log = fileURLToPath(new URL('../../src/util/log.js', import.meta.url));
    const script = `
      const { startWebServer } = await import(${JSON.stringify(server)});
      const { TargetRegistry } = await import(${JSON.stringify(registry)});
      const { createLogger } = await import(${JSON.stringify(log)});
      try {
        const s = await startWebServer({ hub: new TargetRegistry(), host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }) });
        console.log('STARTED', s.port);
        await s.close();
        process.exit(0);
      } catch (e) {
        console.error(e.name + ': ' + e.message);
        process.exit(3);
      }`;
    const run = (env: NodeJS.ProcessEnv) =>
      execFileP(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env } }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const forced = await run({ UWS_USE_FALLBACK: '1' });
    expect(forced.code).to.equal(3);
    expect(forced.stderr).to.match(/UwsUnavailableError: .*fallback.*UWS_USE_FALLBACK/);
    expect(forced.stdout).to.not.include('STARTED');
    const normal = await run({ UWS_USE_FALLBACK: '' });
    expect(normal.code, normal.stderr).to.equal(0);
    expect(normal.stdout).to.match(/STARTED \d+/);
  });

  it('tells the shim from the addon by shape', () => {
    const require = createRequire(import.meta.url);
    const shim = require('uWebSockets.js/dist/index.js') as unknown;
    expect(isNativeUws(shim)).to.equal(false);
    expect(isNativeUws({})).to.equal(false);
  });

  it('names the Node versions it runs on, and refuses others with a clear reason', () => {
    expect(unsupportedNode('20.19.1')).to.equal(undefined);
    expect(unsupportedNode('18.20.0')).to.equal(undefined);
    const why = unsupportedNode('22.11.0');
    expect(why).to.match(/needs Node 16, 18, 20/);
    expect(why).to.include('Node 22.11.0');
    expect(unsupportedNode('24.0.0')).to.be.a('string');
  });
});
