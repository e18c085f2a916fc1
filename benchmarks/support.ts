/** What the benchmarks share: statistics, machine facts, and which peer versions run here. */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {}
  return os.cpus()[0]?.model ?? 'unknown';
}

/** A short hash of src/*.ts, so that a result can be matched to the code it measured. */
export function srcHash(): string {
  const dir = new URL('../src/', import.meta.url);
  const hash = createHash('sha256');
  for (const name of readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort())
    hash.update(name).update(readFileSync(new URL(name, dir)));
  return hash.digest('hex').slice(0, 12);
}

export function versionOf(pkg: string): string {
  const file = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** [wall ns, cpu ns] of one measurement. */
export type Sample = [wall: number, cpu: number];

/**
 * Starts `script` again in a child process with `flag` (the script's child mode), waits for it to
 * say `ready`, and returns a function that asks it for one round: the child answers `wall cpu`.
 * The baselines run there so they never share a process with asyncbackoff's AsyncLocalStorage.
 */
export async function startChild(
  script: string,
  flag: string,
  args: readonly string[],
): Promise<{ round: () => Promise<Sample>; stop: () => void }> {
  const child = spawn(process.execPath, [...process.execArgv, script, flag, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the ${flag} child exited (code ${child.exitCode})`);
    return value;
  };
  const ready = await next();
  if (ready !== 'ready') throw new Error(`the ${flag} child said ${JSON.stringify(ready)}`);
  return {
    round: async () => {
      child.stdin!.write('round\n');
      const [wall, cpu] = (await next()).split(' ').map(Number);
      return [wall!, cpu!];
    },
    stop: () => child.stdin!.end(),
  };
}

/** The newest peer versions that run on this Node: p-retry 9 and cockatiel 4 need Node >= 22. */
export function peerPackages(): { pRetry: string; cockatiel: string } {
  const modern = Number(process.versions.node.split('.')[0]) >= 22;
  return modern
    ? { pRetry: 'p-retry', cockatiel: 'cockatiel' }
    : { pRetry: 'p-retry-node20', cockatiel: 'cockatiel-node20' };
}
