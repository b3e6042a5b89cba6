import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { covdBin, pollUntil } from './helpers.js';

describe('covd demo (npm start)', function () {
  this.timeout(300_000);

  for (const example of [undefined, 'iniparse']) it(`serves the ${example ?? 'default'} example live, prints status lines, and on Ctrl-C leaves nothing running`, async () => {
    const child = spawn(process.execPath, [covdBin, 'demo', '--port', '0', '--interval', '1', ...(example ? ['--example', example] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const url = await pollUntil('the URL line', () => /serving the live coverage at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 120_000);
      const pid = Number(/fuzzing .* \(pid (\d+)\)/.exec(out)![1]);
      await pollUntil('a status line with coverage', () => /coverage [1-9]\d*\/\d+ PCs/.test(out), 120_000);
      const res = await fetch(url);
      expect(res.status).to.equal(200);
      const api = (await (await fetch(`${url}api/targets`)).json()) as { targets: { state: string; name: string }[] };
      expect(api.targets.map((t) => t.state)).to.include('ready');
      expect(api.targets.map((t) => t.name)).to.include(example === 'iniparse' ? 'fuzz_iniparse' : 'fuzz_tinyimg');
      child.kill('SIGINT');
      expect(await exited).to.equal(0);
      expect(out).to.contain('nothing left running');
      expect(() => process.kill(pid, 0), 'the fuzzer must be gone').to.throw(/ESRCH/);
      await pollUntil('the port to close', async () => { try { await fetch(url); return false; } catch { return true; } }, 10_000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
