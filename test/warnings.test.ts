/**
 * Traps for newcomers: an instance that allows retries but makes no thrown error retriable warns
 * once (aiomisc's rule: only attempt timeouts are retried without `exceptions`), and nothing is
 * said on the happy path or when the policy retries errors.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asyncbackoff, Backoff } from '../src/index.js';
import { nextMacrotask } from './support/clock.js';

let warnings: Array<Error & { code?: string }>;
const onWarning = (warning: Error) => warnings.push(warning);
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
});

const fails = () => Promise.reject(new TypeError('connection refused'));

describe('the no-retry-filter warning', () => {
  it('is emitted once per instance, with a stable code, naming what to add', async () => {
    const backoff = new Backoff({ maxTries: 5 });
    for (let i = 0; i < 3; i++) await backoff.execute(fails).catch(() => {});
    await nextMacrotask();
    expect(warnings.map((w) => w.code)).toEqual(['ASYNCBACKOFF_NO_RETRY_FILTER']);
    expect(warnings[0]!.message).toMatch(
      /TypeError.*'exceptions', 'retryOn', 'retryAll' or 'policy'/,
    );
    expect(warnings[0]!.name).toBe('AsyncBackoffWarning');
  });

  it('says nothing on the happy path, with maxTries 1, or when a filter exists', async () => {
    await new Backoff({ maxTries: 5 }).execute(async () => 1);
    await new Backoff({ maxTries: 1 }).execute(fails).catch(() => {});
    await new Backoff({ maxTries: 3, exceptions: [RangeError] }).execute(fails).catch(() => {});
    await new Backoff({ maxTries: 3, retryOn: () => false }).execute(fails).catch(() => {});
    // A policy alone decides about every thrown value: this one abandons at the first.
    await new Backoff({ maxTries: 3, policy: () => [true, 0] }).execute(fails).catch(() => {});
    await asyncbackoff(null, null)(fails)().catch(() => {}); // maxTries unbounded, but...
    await nextMacrotask();
    // ...aiomisc's positional form without exceptions is the one case above that warns.
    expect(warnings.map((w) => w.code)).toEqual(['ASYNCBACKOFF_NO_RETRY_FILTER']);
  });
});
