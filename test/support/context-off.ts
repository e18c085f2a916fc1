/**
 * Child script for the `context: false` test: runs only context-free instances (bounded and not,
 * with retries and timeouts) and prints whether asyncbackoff's AsyncLocalStorage got enabled.
 */
import { Backoff } from '../../src/index.js';
import { attemptStorage } from '../../src/process-state.js';

// The deadline only bounds the run: one 5 ms attempt timeout, then a retry that succeeds.
const bounded = new Backoff({
  context: false,
  attemptTimeout: 5,
  deadline: 60_000,
  retryAll: true,
});
const unbounded = new Backoff({ context: false, maxTries: 3, retryAll: true });
let calls = 0;
await unbounded.execute(async () => {
  if (++calls < 3) throw new Error('again');
});
await bounded.execute(() => (++calls < 5 ? new Promise(() => {}) : 'done'));
// Node < 24 only: `enabled` is set once run()/enterWith() installed the promise hooks.
const enabled = (attemptStorage as unknown as { enabled?: boolean }).enabled;
process.stdout.write(JSON.stringify({ enabled: enabled ?? null, calls }));
