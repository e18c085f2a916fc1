/**
 * The README's guarded call (recipes/guarded-call.ts: `query()` + `isTransientPgError` and a
 * `'fail'` circuit breaker) through a 2 s PostgreSQL outage. The pool connects through a TCP
 * proxy that counts the connections reaching the server's side: while the breaker is open, calls
 * reject at once with BrokenCircuitError and make none; within 1 s of the server's return calls
 * succeed again.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { BREAKER_CHANNEL, BrokenCircuitError, type CircuitStateChange } from 'asyncbackoff';
import { isTransientPgError } from 'asyncbackoff/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Admin,
  CountingProxy,
  checkServerControl,
  missingPgEnv,
  server,
  sleep,
} from './support/pg.js';

describe.skipIf(missingPgEnv.length > 0)("PostgreSQL: a 'fail' breaker during an outage", () => {
  const proxy = new CountingProxy();
  let admin: Admin;
  const realPort = process.env.PGPORT;
  beforeAll(async () => {
    await checkServerControl();
    admin = new Admin();
    await admin.query('DROP TABLE IF EXISTS users');
    await admin.query('CREATE TABLE users (id text PRIMARY KEY, name text NOT NULL)');
    await admin.query(`INSERT INTO users VALUES ('u1', 'Ada')`);
    await proxy.start();
    // The recipe's pool takes its settings from the PG* variables when it opens a connection.
    process.env.PGPORT = String(proxy.port);
  });
  afterAll(async () => {
    process.env.PGPORT = realPort;
    await server('pg-start');
    await admin?.query('DROP TABLE IF EXISTS users');
    await admin?.end();
    await proxy.stop();
  });

  it('rejects at once without reaching the server while open, and recovers within 1 s of the return', async () => {
    const recipe = await import('./recipes/guarded-call.js');
    const changes: CircuitStateChange[] = [];
    const onChange = (message: unknown) => changes.push(message as CircuitStateChange);
    diagnosticsChannel.subscribe(BREAKER_CHANNEL, onChange);
    try {
      await expect(recipe.findUser('u1')).resolves.toEqual({ id: 'u1', name: 'Ada' });

      type Outcome = { at: number; ms: number; ok: boolean; error?: unknown };
      const outcomes: Outcome[] = [];
      let calling = true;
      const caller = (async () => {
        while (calling) {
          const at = performance.now();
          try {
            await recipe.findUser('u1');
            outcomes.push({ at, ms: performance.now() - at, ok: true });
          } catch (error) {
            outcomes.push({ at, ms: performance.now() - at, ok: false, error });
          }
          await sleep(10);
        }
      })();

      await sleep(200);
      const downAt = performance.now();
      await server('pg-stop');
      const connectionsAtStop = proxy.connections;
      const passedAtStop = recipe.breaker.stats.passed;
      await sleep(2_000);
      const connectionsBeforeStart = proxy.connections;
      const passedBeforeStart = recipe.breaker.stats.passed;
      await server('pg-start');
      const upAt = performance.now();
      await sleep(1_200);
      calling = false;
      await caller;

      const during = outcomes.filter((o) => o.at >= downAt && o.at + o.ms <= upAt);
      const broken = during.filter((o) => o.error instanceof BrokenCircuitError);
      const other = during.filter((o) => !o.ok && !(o.error instanceof BrokenCircuitError));
      const firstSuccess = outcomes.find((o) => o.ok && o.at + o.ms > upAt);
      const recovered =
        firstSuccess === undefined
          ? Number.POSITIVE_INFINITY
          : firstSuccess.at + firstSuccess.ms - upAt;
      const connections = connectionsBeforeStart - connectionsAtStop;
      const admitted = passedBeforeStart - passedAtStop;
      // Refused at the first attempt (no cause): nothing ran. With a cause: an attempt failed
      // first (it made its connection) and its retry was refused.
      const refusedOutright = broken.filter((o) => (o.error as Error).cause === undefined);
      const slowest = Math.max(...refusedOutright.map((o) => o.ms));
      console.log(
        `[pg-breaker] outage ${Math.round(upAt - downAt)} ms: ${during.length} calls, ${broken.length} BrokenCircuitError ` +
          `(${refusedOutright.length} before any attempt, slowest ${slowest.toFixed(2)} ms), ${other.length} other failures; server-side connections ${connections} ` +
          `for ${admitted} admitted attempts; breaker opened ${recipe.breaker.stats.opened}×; ` +
          `first success ${Math.round(recovered)} ms after the server was back`,
      );

      // The refused calls never reached the server: every connection the proxy saw during the
      // outage belongs to an attempt the breaker admitted (the failures that opened it, probes).
      expect(refusedOutright.length).toBeGreaterThan(50);
      expect(connections).toBeLessThanOrEqual(admitted);
      expect(admitted).toBeLessThan(20);
      expect(slowest).toBeLessThan(20); // at once, not after timeouts or pauses
      for (const o of other) expect(isTransientPgError(o.error)).toBe(true);
      expect(recovered).toBeLessThanOrEqual(1_000);
      expect(changes.some((c) => c.to === 'open')).toBe(true);
      expect(changes.at(-1)).toMatchObject({ to: 'closed', reason: 'probe-succeeded' });
    } finally {
      diagnosticsChannel.unsubscribe(BREAKER_CHANNEL, onChange);
      await recipe.pool.end();
    }
  }, 30_000);
});
