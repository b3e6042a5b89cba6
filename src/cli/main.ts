// Nothing else is imported up front: `covd --help` loads this module only (bench/NOTES-cli.md).
import type { Command } from './command.js';

/**
 * Subcommands, in the order `covd --help` lists them. Each is a module src/cli/commands/<name>.ts,
 * imported only when its command runs, so `covd symbolize` never pays for uWebSockets.js or lmdb.
 */
const commands: Record<string, { summary: string; symbolizes?: true }> = {
  serve: { summary: 'run the daemon (HTTP/WebSocket UI, control socket, coverage thread)', symbolizes: true },
  demo: { summary: 'build the example target, fuzz it, and serve it live (what `npm start` runs)', symbolizes: true },
  cc: { summary: 'compile and link a libFuzzer (or --engine=afl: AFL++) target with the covd agent (wraps clang-14)' },
  symbolize: { summary: 'resolve addresses to file:line:column like llvm-symbolizer', symbolizes: true },
  add: { summary: 'tell a running daemon about a coverage file' },
  list: { summary: 'list the targets of a running daemon' },
  status: { summary: 'show a running daemon\'s status' },
  remove: { summary: 'remove a target from a running daemon' },
  inputs: { summary: 'list the inputs that found new coverage in a target (--line FILE:LINE: behind one line)' },
  input: { summary: 'write the bytes of one input of a target (to replay it: ./target FILE)' },
  crashes: { summary: 'list the crashes of a target, grouped by signature' },
  diff: { summary: 'compare the line coverage of two targets, or of a target now and at a time (exit 1: lines lost)' },
  fleet: { summary: 'list the nodes of the daemon\'s fleet (covd serve --nats) with their state and lag' },
  'systemd-unit': { summary: 'print a systemd user unit for `covd serve`' },
};

/** Loads src/cli/commands/<name>.ts, whose default export is the Command. */
async function loadCommand(name: string): Promise<Command | undefined> {
  try {
    return ((await import(`./commands/${name}.js`)) as { default: Command }).default;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(`commands/${name}.js`)) return undefined;
    throw err;
  }
}

function topUsage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `usage: covd <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun \`covd <command> --help\` for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(topUsage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    console.error(`covd: unknown command '${name}'\n\n${topUsage()}`);
    return 2;
  }
  // V8's flags are per process: set here, once, before the command's modules load (v8-flags.ts).
  if (entry.symbolizes) (await import('./v8-flags.js')).setSymbolizerV8Flags();
  const cmd = await loadCommand(name);
  if (!cmd) {
    console.error(`covd: the '${name}' command is not available in this build`);
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof (await import('./command.js')).UsageError) {
      console.error(`covd ${name}: ${err.message}\n\n${cmd.usage}`);
      return 2;
    }
    throw err;
  }
}
