/** What the benchmarks share: statistics, machine facts, and which peer versions run here. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

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
