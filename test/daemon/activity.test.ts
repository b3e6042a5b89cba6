/**
 * Honest liveness: a real fuzzer that runs, pauses (SIGSTOP), resumes and is killed shows as
 * running, idle, running and stopped, with runs/s decaying to 0, in the API, /metrics and
 * `covd list`; and a pid reused by another process is not taken for the fuzzer.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildExampleTarget, runFuzzer, findCoverageFile } from '../../src/build/targets.js';
import { processStartMs, writerAlive } from '../../src/daemon/liveness.js';
import type { TargetInfo } from '../../src/contracts/hub.js';
import { startServe, pollUntil, covdBin, type ServeProcess } from './helpers.js';

describe('target activity', function () {
  this.timeout(240_000);

  it('a writer is alive only with its own start time', async () => {
    const started = processStartMs(process.pid);
    expect(started).to.be.a('number');
    expect(Math.abs(started! - (Date.now() - process.uptime() * 1000))).to.be.below(2000);
    expect(writerAlive(process.pid, started!)).to.equal(true);
    expect(writerAlive(process.pid)).to.equal(true);
    // The same pid with another start time is a reused pid: not our writer.
    expect(writerAlive(process.pid, started! - 3_600_000)).to.equal(false);
    const child = spawn('true');
    const pid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    expect(writerAlive(pid)).to.equal(false);
    expect(writerAlive(0)).to.equal(false);
    expect(writerAlive(-5)).to.equal(false);
  });

  it('a killed writer its parent has not reaped (a zombie) is not alive', async () => {
    // The shell's child exits at once; `exec sleep` leaves nobody to reap it for 3 s.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 3'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((r) => parent.stdout!.once('data', (b: Buffer) => r(b.toString()))));
    await pollUntil('the zombie', () => /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000, 20);
    expect(() => process.kill(pid, 0)).to.not.throw();
    expect(writerAlive(pid)).to.equal(false);
    parent.kill('SIGKILL');
  });

  describe('a real fuzzer, run, paused, resumed and killed', () => {
    let dir: string;
    let d: ServeProcess | undefined;
    let fz: ReturnType<typeof runFuzzer> | undefined;
    before(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'covd-act-')); });
    after(async () => {
      if (fz) { try { process.kill(fz.child.pid!, 'SIGCONT'); } catch { /* gone */ } await fz.stop('SIGKILL'); }
      if (d) { d.child.kill('SIGKILL'); await d.exited; }
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('shows running, idle, running, stopped; runs/s reads 0 in the API, /metrics and covd list', async () => {
      const exe = await buildExampleTarget();
      const socket = join(dir, 'covd.sock');
      const cd = join(dir, 'cd');
      d = await startServe({ socket, stateDir: join(dir, 'state'), extra: ['--idle-seconds', '2'] });
      fz = runFuzzer(exe, { covdDir: cd, socket });
      const id = (await findCoverageFile(cd)).split('/').pop()!;
      const get = async () => ((await (await fetch(`${d!.url}api/targets`)).json()) as { targets: TargetInfo[] }).targets.find((t) => t.id === id);
      const metric = async (name: string, extra = '') => {
        const text = await (await fetch(`${d!.url}metrics`)).text();
        const m = new RegExp(`^${name}\\{target="${id}",name="[^"]*"${extra}\\} (\\S+)$`, 'm').exec(text);
        return m ? Number(m[1]) : undefined;
      };

      const running = await pollUntil('running with runs/s', async () => { const t = await get(); return t?.state === 'ready' && t.activity === 'running' && t.stats.runsPerSec > 0 ? t : undefined; }, 60_000);
      expect(running.stoppedAt).to.equal(null);
      expect(await metric('covd_target_activity', ',activity="running"')).to.equal(1);

      // Paused: alive, but no runs.
      process.kill(fz.child.pid!, 'SIGSTOP');
      const idle = await pollUntil('idle', async () => { const t = await get(); return t?.activity === 'idle' ? t : undefined; }, 15_000);
      await pollUntil('runs/s to decay', async () => (await get())?.stats.runsPerSec === 0, 10_000);
      expect(idle.stoppedAt).to.equal(null);
      expect(await metric('covd_target_activity', ',activity="idle"')).to.equal(1);

      process.kill(fz.child.pid!, 'SIGCONT');
      await pollUntil('running again', async () => (await get())?.activity === 'running', 15_000);

      // Killed mid-run: stopped within 15 s, and runs/s 0 everywhere.
      const killedAt = Date.now();
      await fz.stop('SIGKILL');
      fz = undefined;
      const stopped = await pollUntil('stopped', async () => { const t = await get(); return t?.activity === 'stopped' ? t : undefined; }, 15_000);
      expect(Date.now() - killedAt).to.be.below(15_000);
      expect(stopped.stoppedAt).to.be.within(killedAt - 1000, Date.now());
      await pollUntil('runs/s 0 in the API', async () => (await get())?.stats.runsPerSec === 0, 10_000);
      expect(await metric('covd_target_runs_per_second')).to.equal(0);
      expect(await metric('covd_target_activity', ',activity="stopped"')).to.equal(1);
      expect(await metric('covd_target_activity', ',activity="running"')).to.equal(0);
      const listed = spawnSync(process.execPath, [covdBin, 'list', '--socket', socket], { encoding: 'utf8' });
      expect(listed.status).to.equal(0);
      const line = listed.stdout.split('\n').find((l) => l.startsWith(id))!;
      expect(line).to.match(/ready\s+stopped\s/);
      expect(line).to.match(/\s0\/s\s/);

      // A restart finds it still stopped (the writer named in the metadata is dead).
      await d.stop();
      d = await startServe({ socket, stateDir: join(dir, 'state') });
      const back = await pollUntil('restored', async () => (await get()) ?? undefined);
      expect(back.activity).to.equal('stopped');
      await new Promise((r) => setTimeout(r, 2500));
      expect((await get())!.activity).to.equal('stopped');
    });
  });
});
