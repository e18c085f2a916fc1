/**
 * The README's advisory-lock recipe (recipes/advisory-lock.ts: `withLock` + `advisoryLock`) on a
 * real PostgreSQL: 4 processes × 100 read-modify-write increments of one counter row, with no
 * overlapping section and no lost increment; and a holder killed (SIGKILL) inside its section
 * frees the lock at once, because the server ends its session when the connection drops.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, missingPgEnv } from './support/pg.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const worker = fileURLToPath(new URL('./support/advisory-worker.ts', import.meta.url));
const TABLE = 'advisory_counter';

interface Line {
  i?: number;
  start?: string;
  end?: string;
  wait?: number;
  error?: string;
  message?: string;
  done?: boolean;
  failures?: number;
  held?: boolean;
}

function start(config: object): {
  child: ChildProcess;
  lines: Line[];
  exited: Promise<number | null>;
  stderr: string[];
} {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, JSON.stringify(config)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  const stderr: string[] = [];
  let buffer = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      lines.push(JSON.parse(buffer.slice(0, newline)) as Line);
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, lines, exited, stderr };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

describe.skipIf(missingPgEnv.length > 0)('PostgreSQL: advisory locks through withLock', () => {
  let admin: Admin;
  beforeAll(async () => {
    admin = new Admin();
    await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await admin.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, v int NOT NULL)`);
    await admin.query(`INSERT INTO ${TABLE} VALUES (1, 0)`);
  });
  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await admin?.end();
  });

  it('4 processes × 100 increments: no overlapping section, no lost increment, no failure', async () => {
    const name = `counter-${process.pid}`;
    const started = performance.now();
    const workers = Array.from({ length: 4 }, () => start({ name, table: TABLE, count: 100 }));
    const codes = await Promise.all(workers.map((w) => w.exited));
    const wall = performance.now() - started;
    for (const w of workers) expect(w.stderr.join('')).not.toMatch(/Error/);
    expect(codes).toEqual([0, 0, 0, 0]);

    const sections = workers.flatMap((w) => w.lines.filter((line) => line.start !== undefined));
    const failures = workers.flatMap((w) => w.lines.filter((line) => line.error !== undefined));
    const sorted = sections
      .map((s) => ({ start: BigInt(s.start!), end: BigInt(s.end!) }))
      .sort((a, b) => (a.start < b.start ? -1 : 1));
    let overlaps = 0;
    for (let k = 1; k < sorted.length; k++) if (sorted[k]!.start < sorted[k - 1]!.end) overlaps++;
    const { rows } = await admin.query<{ v: number }>(`SELECT v FROM ${TABLE} WHERE id = 1`);
    const waits = sections.map((s) => s.wait!);
    console.log(
      `[pg-lock] 4 processes × 100: ${sections.length} sections, ${overlaps} overlapping, counter ${rows[0]!.v}, ` +
        `${failures.length} failures; lock wait p50 ${percentile(waits, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(waits, 99).toFixed(1)} ms, max ${Math.max(...waits).toFixed(1)} ms; wall ${Math.round(wall)} ms`,
    );
    expect(failures).toEqual([]);
    expect(sections).toHaveLength(400);
    expect(overlaps).toBe(0);
    expect(rows[0]!.v).toBe(400);
  }, 60_000);

  it("the holder's session terminated inside its section: the body's signal aborts and the call rejects with LockLostError", async () => {
    // The recipe's pool stays open: the next test uses it, and ends it.
    const { withAdvisoryLock } = await import('./recipes/advisory-lock.js');
    const { LockLostError } = await import('asyncbackoff');
    let held: (pid: number | undefined) => void = () => {};
    const holding = new Promise<number | undefined>((resolve) => {
      held = resolve;
    });
    let reason: unknown;
    const call = withAdvisoryLock(
      `terminated-${process.pid}`,
      (lease, signal) =>
        new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            reject(signal.reason);
          });
          held(lease.backendPid);
        }),
    );
    const outcome = call.then(
      () => undefined,
      (error: unknown) => error,
    );
    const pid = await Promise.race([
      holding,
      outcome.then((error) => Promise.reject(new Error(`the call ended first: ${error}`))),
    ]);
    expect(pid).toBeTypeOf('number');
    const { rows } = await admin.query('SELECT pg_terminate_backend($1) AS done', [pid]);
    expect(rows[0].done).toBe(true);
    // The session is checked every 2 s (the recipe's default checkEvery).
    const error = await outcome;
    expect(error).toBeInstanceOf(LockLostError);
    expect(error).toBe(reason);
  }, 30_000);

  it('a holder killed inside its section frees the lock at once', async () => {
    const name = `killed-${process.pid}`;
    const victim = start({ name, table: TABLE, count: 0, hold: true });
    const { withAdvisoryLock, pool } = await import('./recipes/advisory-lock.js');
    try {
      await expect
        .poll(() => victim.lines.some((line) => line.held), { timeout: 20_000 })
        .toBe(true);
      // The lock is really held: an acquisition now waits (busy), and gets it only after the kill.
      let acquiredAt = Number.NaN;
      const waiting = withAdvisoryLock(name, async () => {
        acquiredAt = performance.now();
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(Number.isNaN(acquiredAt)).toBe(true);
      const killedAt = performance.now();
      victim.child.kill('SIGKILL');
      await waiting;
      const freedAfter = acquiredAt - killedAt;
      console.log(
        `[pg-lock] holder SIGKILLed: the lock was taken ${freedAfter.toFixed(1)} ms after the kill`,
      );
      expect(freedAfter).toBeGreaterThanOrEqual(0);
      expect(freedAfter).toBeLessThan(500);
    } finally {
      victim.child.kill('SIGKILL');
      await victim.exited;
      await pool.end();
    }
  }, 60_000);
});
