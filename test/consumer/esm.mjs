// The packed package used from plain ESM JavaScript.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as api from 'asyncbackoff';
import {
  AttemptTimeoutError,
  asyncbackoff,
  asyncretry,
  Backoff,
  currentAttempt,
} from 'asyncbackoff';

const require = createRequire(import.meta.url);
const checkNames = require('./names.cjs');

// asyncretry retries every thrown value; currentAttempt() numbers the attempts.
let calls = 0;
const flaky = asyncretry(3, { pause: 5 })(async (x) => {
  calls++;
  assert.equal(currentAttempt()?.attempt, calls);
  if (calls < 3) throw new Error(`transient ${calls}`);
  return x * 2;
});
assert.equal(await flaky(21), 42);
assert.equal(calls, 3);
assert.equal(currentAttempt(), undefined);

// asyncbackoff(attemptTimeout, deadline): a hung attempt is aborted through its signal and retried;
// `this` is kept.
const service = {
  name: 'users',
  calls: 0,
  find: asyncbackoff(
    50,
    1000,
  )(async function (id) {
    this.calls++;
    const { signal, attempt } = currentAttempt();
    if (attempt === 1) {
      await new Promise((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    return `${this.name}:${id}:${attempt}`;
  }),
};
assert.equal(await service.find(7), 'users:7:2');
assert.equal(service.calls, 2);

// Every attempt times out: AttemptTimeoutError with its literal name and stable code.
const backoff = new Backoff({ attemptTimeout: 20, maxTries: 2 });
await assert.rejects(
  backoff.execute(() => new Promise(() => {})),
  (error) =>
    error instanceof AttemptTimeoutError &&
    error.name === 'AttemptTimeoutError' &&
    error.constructor.name === 'AttemptTimeoutError' &&
    AttemptTimeoutError.name === 'AttemptTimeoutError' &&
    error.code === 'ASYNCBACKOFF_ATTEMPT_TIMEOUT',
);
checkNames(api, 'ESM');
assert.equal(backoff.statistics.attempts, 2);

// The CJS build is a second copy of the package; instanceof still holds across copies.
const cjs = require('asyncbackoff');
assert.notEqual(cjs.AttemptTimeoutError, AttemptTimeoutError);
const fromCjs = await new cjs.Backoff({ attemptTimeout: 10, maxTries: 1 })
  .execute(() => new Promise(() => {}))
  .catch((error) => error);
assert.ok(
  fromCjs instanceof AttemptTimeoutError,
  'a CJS-thrown error is an ESM AttemptTimeoutError',
);
assert.equal(typeof require('asyncbackoff/package.json').version, 'string');

// createFetch with a caller's signal combines it with each attempt's through AbortSignal.any, the
// API that makes `engines` say Node >= 20.3.0 (CI runs this file on that version too).
let sends = 0;
const http = api.createFetch({
  pause: 0,
  fetch: async (request) => {
    sends++;
    assert.ok(request.signal instanceof AbortSignal);
    return new Response(sends < 2 ? 'busy' : 'ok', { status: sends < 2 ? 503 : 200 });
  },
});
const response = await http('http://users.internal/users/1', {
  signal: new AbortController().signal,
});
assert.equal(await response.text(), 'ok');
assert.equal(sends, 2);

console.log('esm: ok');
