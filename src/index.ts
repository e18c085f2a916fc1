/**
 * asyncbackoff: deadline-aware retries for async Node services.
 * @packageDocumentation
 */

export { type AttemptContext, currentAttempt } from './attempt.js';
export { Backoff } from './backoff.js';
export {
  type BatchOutcome,
  type BatchProgress,
  type MapOptions,
  type RerunOptions,
  rerunFailed,
} from './batch.js';
export type { BlockAttempt } from './block.js';
export {
  BREAKER_CHANNEL,
  type CircuitBreakerOptions,
  type CircuitBreakerStats,
  type CircuitChangeReason,
  type CircuitStateChange,
  type CountingCircuitBreaker,
  circuitBreaker,
} from './breaker.js';
export {
  type RetryBudgetStats,
  type RetryQuota,
  type RetryQuotaOptions,
  retryQuota,
  type TokenBucket,
  type TokenBucketOptions,
  tokenBucket,
} from './budget.js';
export {
  asyncbackoff,
  asyncretry,
  type BackoffDecorator,
  type RetryOptions,
  type TrailingOptions,
} from './decorators.js';
export {
  type ConstantOptions,
  constant,
  type DelaysOptions,
  delays,
  type ExponentialOptions,
  exponential,
  type FibonacciOptions,
  fibonacci,
  fromFunction,
  isDelayStrategy,
  type Jitter,
  type JitterOptions,
  type LinearOptions,
  linear,
  randomBetween,
  seededRandom,
} from './delays.js';
export {
  AttemptTimeoutError,
  BrokenCircuitError,
  DeadlineExceededError,
  LockLostError,
  LockUnavailableError,
  RetryConditionError,
  TimeoutError,
} from './errors.js';
export {
  type CreateFetchOptions,
  createFetch,
  type FetchAttemptInit,
  type FetchOptions,
  type FetchRequestEvent,
  type FetchResponseEvent,
  type FetchRetryEvent,
  HttpStatusError,
  type RetryingFetch,
} from './fetch.js';
export type { Lock } from './lock.js';
export { isTransientNetworkError } from './network-errors.js';
export type { BackoffOptions, MaybeAsync } from './options.js';
export { parseGrpcPushback, parseRetryAfter, retryAfterFrom } from './pushback.js';
export { retry } from './retry.js';
export { MAX_SERVER_TIMEOUT, type ServerTimeoutOptions, serverTimeout } from './server-timeout.js';
export type {
  BackoffStatistics,
  CircuitBreaker,
  CircuitState,
  DelayContext,
  DelayFunction,
  DelayStrategy,
  ErrorClass,
  FailureKind,
  GiveupEvent,
  HookResult,
  LateResultInfo,
  PolicyDecision,
  PolicyInfo,
  RetryAfterHint,
  RetryBudget,
  RetryEvent,
  RetryPolicy,
  SuccessEvent,
} from './types.js';
