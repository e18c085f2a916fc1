/**
 * asyncbackoff: deadline-aware retries for async Node services.
 * @packageDocumentation
 */

export { type AttemptContext, currentAttempt } from './attempt.js';
export { Backoff } from './backoff.js';
export type { BatchOutcome, BatchProgress, MapOptions } from './batch.js';
export type { BlockAttempt } from './block.js';
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
export { isTransientNetworkError } from './network-errors.js';
export type { BackoffOptions } from './options.js';
export { parseGrpcPushback, parseRetryAfter, retryAfterFrom } from './pushback.js';
export { retry } from './retry.js';
export type {
  BackoffStatistics,
  DelayContext,
  DelayFunction,
  DelayStrategy,
  ErrorClass,
  FailureKind,
  GiveupEvent,
  HookResult,
  PolicyDecision,
  PolicyInfo,
  RetryAfterHint,
  RetryBudget,
  RetryEvent,
  RetryPolicy,
  SuccessEvent,
} from './types.js';
