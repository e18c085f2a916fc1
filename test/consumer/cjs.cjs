// The packed package used from CommonJS.
const assert = require('node:assert/strict');
const checkNames = require('./names.cjs');
const {
  AttemptTimeoutError,
  asyncbackoff,
  asyncretry,
  Backoff,
  currentAttempt,
} = require('asyncbackoff');

async function main() {
  let calls = 0;
  const flaky = asyncretry(3, { pause: 5 })(async (x) => {
    calls++;
    assert.equal(currentAttempt()?.attempt, calls);
    if (calls < 3) throw new Error(`transient ${calls}`);
    return x * 2;
  });
  assert.equal(await flaky(21), 42);
  assert.equal(calls, 3);

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

  const backoff = new Backoff({ attemptTimeout: 20, maxTries: 2 });
  await assert.rejects(
    backoff.execute(() => new Promise(() => {})),
    (error) =>
      error instanceof AttemptTimeoutError &&
      error.constructor.name === 'AttemptTimeoutError' &&
      AttemptTimeoutError.name === 'AttemptTimeoutError' &&
      error.code === 'ASYNCBACKOFF_ATTEMPT_TIMEOUT',
  );
  assert.equal(backoff.statistics.attempts, 2);
  checkNames(require('asyncbackoff'), 'CommonJS');
}

main().then(
  () => console.log('cjs: ok'),
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
