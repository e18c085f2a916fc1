// Every exported class keeps its own name through the build: `X.name`, `error.name`,
// `error.constructor.name` and what `console.log(error)` prints. (esbuild used to bundle a class
// that names itself as `class _X`.) Called with the ESM and with the CommonJS module.
const assert = require('node:assert/strict');
const { inspect } = require('node:util');

module.exports = function checkNames(api, build) {
  const samples = {
    TimeoutError: () => new api.TimeoutError('took too long', 10),
    AttemptTimeoutError: () => new api.AttemptTimeoutError(10, 1),
    DeadlineExceededError: () => new api.DeadlineExceededError(10, 2),
    RetryConditionError: () => new api.RetryConditionError({ status: 'run' }, 3),
    HttpStatusError: () => new api.HttpStatusError(new Response(null, { status: 503 }), 1),
    BrokenCircuitError: () => new api.BrokenCircuitError(100),
    LockUnavailableError: () => new api.LockUnavailableError(3, 250),
    LockLostError: () => new api.LockLostError('renewal failed'),
  };
  for (const [name, make] of Object.entries(samples)) {
    const error = make();
    assert.equal(api[name].name, name, `${build}: ${name}.name`);
    assert.equal(error.name, name, `${build}: new ${name}().name`);
    assert.equal(error.constructor.name, name, `${build}: new ${name}().constructor.name`);
    assert.ok(error instanceof Error && error instanceof api[name], `${build}: instanceof ${name}`);
    const printed = inspect(error).split('\n')[0];
    assert.ok(printed.startsWith(`${name}: `), `${build}: console.log prints ${printed}`);
  }
  assert.equal(api.Backoff.name, 'Backoff', `${build}: Backoff.name`);
};
