/**
 * The package's runtime exports are its public API, and nothing else: an internal helper exported
 * by accident (resolveDelay was) becomes something users rely on. Adding a public name means
 * adding it here, on purpose.
 */
import { expect, it } from 'vitest';
import * as api from '../src/index.js';

it('exports exactly the public runtime API', () => {
  expect(Object.keys(api).sort()).toEqual(
    [
      'AttemptTimeoutError',
      'BREAKER_CHANNEL',
      'Backoff',
      'BrokenCircuitError',
      'DeadlineExceededError',
      'HttpStatusError',
      'LockLostError',
      'LockUnavailableError',
      'MAX_SERVER_TIMEOUT',
      'RetryConditionError',
      'TimeoutError',
      'asyncbackoff',
      'asyncretry',
      'circuitBreaker',
      'constant',
      'createFetch',
      'currentAttempt',
      'delays',
      'exponential',
      'fibonacci',
      'fromFunction',
      'isDelayStrategy',
      'isTransientNetworkError',
      'linear',
      'parseGrpcPushback',
      'parseRetryAfter',
      'randomBetween',
      'rerunFailed',
      'retry',
      'retryAfterFrom',
      'retryQuota',
      'seededRandom',
      'serverTimeout',
      'tokenBucket',
    ].sort(),
  );
});
