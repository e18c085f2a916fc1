/**
 * The bad-input matrix (issue 14): every option of every public function and factory × the
 * classes of bad values, generated from one table. For each case: the documented error class
 * (`RangeError` for a number out of range, `TypeError` for a wrong type, an unknown key or an
 * inherited key), thrown at once (or, for the functions documented to reject, a rejected promise
 * and never a synchronous throw), with a message naming the function, the option and the value.
 * Each entry also has a valid baseline, and every option a valid value, that must be accepted, so
 * the matrix cannot pass by refusing everything.
 *
 * The tables are typed `{ [K in keyof Required<XOptions>]: Option }`: adding an option to an
 * options interface without a row here is a compile error (`npx tsc -p tsconfig.json`).
 *
 * Not in the matrix, on purpose (their inputs are not options):
 * - `currentAttempt()`: no parameters.
 * - `isDelayStrategy`, `isTransientNetworkError`, `isTransientPgError`, `isTransientRedisError`:
 *   predicates; any value is a valid question, answered `false`.
 * - `parseRetryAfter`, `parseGrpcPushback`, `retryAfterFrom`: parsers of what a server sent;
 *   garbage there is the server's, answered `undefined` (or `-1`, "do not retry"), never thrown.
 * - The error classes (`HttpStatusError`, `TimeoutError`, ...): made by the library, not by users.
 * - A `Lock`'s fields (`withLock`): a lock is an interface a class may implement, so methods
 *   inherited from its prototype and extra properties are legitimate; only the unknown-key and
 *   inherited-key classes are skipped for it.
 */

import {
  asyncbackoff,
  asyncretry,
  Backoff,
  type BackoffOptions,
  type CircuitBreakerOptions,
  type ConstantOptions,
  type CreateFetchOptions,
  circuitBreaker,
  constant,
  createFetch,
  DeadlineExceededError,
  type DelaysOptions,
  delays,
  type ExponentialOptions,
  exponential,
  type FetchOptions,
  type FibonacciOptions,
  fibonacci,
  fromFunction,
  type LinearOptions,
  type Lock,
  linear,
  type MapOptions,
  type RerunOptions,
  type RetryOptions,
  type RetryQuotaOptions,
  randomBetween,
  rerunFailed,
  retry,
  retryQuota,
  type ServerTimeoutOptions,
  seededRandom,
  serverTimeout,
  type TokenBucketOptions,
  type TrailingOptions,
  tokenBucket,
} from 'asyncbackoff';
import {
  type AdvisoryLockOptions,
  advisoryLock,
  type PgPool,
  query,
  type TransactionOptions,
  transaction,
} from 'asyncbackoff/postgres';
import { type RedisLockClient, type RedisLockOptions, redisLock } from 'asyncbackoff/redis';
import { describe, expect, it } from 'vitest';

// ---------------------------------------------------------------------------------------------
// The value classes and what each kind of option makes of them.

type ValueClass =
  | 'negative'
  | 'NaN'
  | 'Infinity'
  | '-0'
  | 'non-integer'
  | '2^31'
  | 'wrong type'
  | 'numeric string'
  | 'null'
  // Two more that matter for times and counts.
  | 'zero'
  | 'sub-millisecond';

type Outcome = 'RangeError' | 'TypeError' | 'valid';
const R = 'RangeError';
const T = 'TypeError';
const OK = 'valid';

const NUMERIC: Readonly<
  Record<Exclude<ValueClass, 'wrong type' | 'numeric string' | 'null'>, number>
> = {
  negative: -1,
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-0': -0,
  'non-integer': 1.5,
  '2^31': 2 ** 31,
  zero: 0,
  'sub-millisecond': 0.5,
};

interface Kind {
  /** What the option makes of each class of value. */
  readonly outcomes: Readonly<Record<ValueClass, Outcome>>;
  /** The `'wrong type'` value for this kind (a boolean for numbers, a number for strings, ...). */
  readonly wrongType: unknown;
}

type NumericOutcomes = Record<keyof typeof NUMERIC, Outcome>;

/** A number option: a non-number is a TypeError, whatever `null` means. */
function numeric(outcomes: NumericOutcomes, nullOutcome: Outcome = T): Kind {
  return {
    outcomes: { ...outcomes, 'wrong type': T, 'numeric string': T, null: nullOutcome },
    wrongType: true,
  };
}

/** A non-number option: every number is of the wrong type. */
function nonNumeric(
  wrongType: unknown,
  { null: nullOutcome = T, numericString = T }: { null?: Outcome; numericString?: Outcome } = {},
): Kind {
  const outcomes = Object.fromEntries(Object.keys(NUMERIC).map((c) => [c, T])) as NumericOutcomes;
  return {
    outcomes: {
      ...outcomes,
      'wrong type': T,
      'numeric string': numericString,
      null: nullOutcome,
    },
    wrongType,
  };
}

/** A policy time (`checkOptionTime`): >= 1 ms, up to 2^31 - 1; -0 and sub-ms values refused. */
function policyTime({ zero, limit }: { zero: boolean; limit: boolean }): Kind {
  return numeric(
    {
      negative: R,
      NaN: R,
      Infinity: limit ? OK : R,
      '-0': R,
      'non-integer': OK,
      '2^31': R,
      zero: zero ? OK : R,
      'sub-millisecond': R,
    },
    limit ? OK : T,
  );
}

/** A count (`checkCount`): an integer >= 1 up to 2^31 - 1. */
function count({ limit, nullable = limit }: { limit: boolean; nullable?: boolean }): Kind {
  return numeric(
    {
      negative: R,
      NaN: R,
      Infinity: limit ? OK : R,
      '-0': R,
      'non-integer': R,
      '2^31': R,
      zero: R,
      'sub-millisecond': R,
    },
    nullable ? OK : T,
  );
}

/** A delay strategy's time (`checkTime`): any finite number in [0, 2^31 - 1], fractions included; -0 refused. */
const strategyTime = numeric({
  negative: R,
  NaN: R,
  Infinity: R,
  '-0': R,
  'non-integer': OK,
  '2^31': R,
  zero: OK,
  'sub-millisecond': OK,
});

/** An optional callback (`checkFunction`: `null` means "none"); `name` also takes a method name. */
const fn = (nullOk: boolean, name = false) =>
  nonNumeric({}, { null: nullOk ? OK : T, numericString: name ? OK : T });
const boolean = nonNumeric('true');
const instance = nonNumeric({});
const array = nonNumeric({});
const enumeration = nonNumeric(true);
const string = nonNumeric(true, { numericString: OK });

// ---------------------------------------------------------------------------------------------
// The table.

interface Option {
  readonly kind: Kind;
  /** A valid value (accepted alone on top of the baseline; also the inherited key's value). */
  readonly valid: unknown;
  /** How the message names the option, when not `'name` (which also matches `'name[0]'`). */
  readonly label?: string;
  /** Options that must accompany this one (`window` needs `failureRatio`). */
  readonly with?: Record<string, unknown>;
  /** Changes to `kind`'s outcomes for this option. */
  readonly except?: Partial<Record<ValueClass, Outcome>>;
  /** Further values: [what, value, outcome, what the message must contain besides the label]. */
  readonly extra?: readonly (readonly [string, unknown, Outcome, (readonly string[])?])[];
}

type Options<O> = { readonly [K in keyof Required<O>]-?: Option };

interface Entry {
  readonly name: string;
  /** The name every message starts with. */
  readonly where: string;
  /** Documented to reject its promise rather than throw (its TSDoc says "rejects"). */
  readonly rejects?: boolean;
  /** Whether the inputs are one options object (so unknown and inherited keys apply). */
  readonly optionsObject: boolean;
  readonly baseline: Record<string, unknown>;
  readonly options: Record<string, Option>;
  readonly call: (input: Record<string, unknown>) => unknown;
}

const ok = () => 1;
const signal = new AbortController().signal;
const budget = retryQuota();
const breaker = circuitBreaker();
class Boom extends Error {}

const backoffOptions: Options<BackoffOptions> = {
  attemptTimeout: { kind: policyTime({ zero: false, limit: true }), valid: 100 },
  deadline: { kind: policyTime({ zero: true, limit: true }), valid: 1000 },
  pause: {
    kind: numeric(
      {
        negative: R,
        NaN: R,
        Infinity: R,
        '-0': R,
        'non-integer': OK,
        '2^31': R,
        zero: OK,
        'sub-millisecond': R,
      },
      T,
    ),
    valid: 50,
    extra: [
      ['a strategy', constant(10), OK],
      ['a function', () => 10, OK],
      ['an object without delay()', {}, T],
    ],
  },
  exceptions: {
    kind: array,
    valid: [Boom],
    extra: [['a non-class entry', [Boom, 'Error'], T]],
  },
  retryOn: { kind: fn(true), valid: () => true },
  retryAll: { kind: boolean, valid: true },
  maxTries: { kind: count({ limit: true }), valid: 3 },
  giveup: { kind: fn(true), valid: () => false },
  signal: { kind: instance, valid: signal },
  policy: { kind: fn(true, true), valid: () => ({ abandon: false }) },
  retryIf: { kind: fn(true), valid: () => false },
  returnLastResult: { kind: boolean, valid: true },
  onRetry: { kind: fn(true, true), valid: ok },
  afterFailure: { kind: fn(true, true), valid: ok },
  onGiveup: { kind: fn(true, true), valid: ok },
  onSuccess: { kind: fn(true, true), valid: ok },
  random: { kind: fn(true), valid: seededRandom(1) },
  budget: { kind: instance, valid: budget },
  breaker: { kind: instance, valid: breaker },
  onLateResult: { kind: fn(true), valid: ok },
  retryAfter: { kind: fn(true), valid: () => undefined },
  maxRetryAfter: { kind: policyTime({ zero: true, limit: true }), valid: 60_000 },
  context: { kind: boolean, valid: false },
};

function without<O extends Record<string, Option>, K extends keyof O>(
  options: O,
  ...keys: K[]
): Omit<O, K> {
  const copy = { ...options };
  for (const key of keys) delete copy[key];
  return copy;
}

const retryOptions: Options<RetryOptions> = without(backoffOptions, 'maxTries');
const trailingOptions: Options<TrailingOptions> = without(
  backoffOptions,
  'attemptTimeout',
  'deadline',
  'pause',
  'exceptions',
);

const fetchOnly: Options<FetchOptions> = {
  statuses: {
    kind: array,
    valid: [503],
    extra: [
      ['a predicate', () => true, OK],
      ['a status out of range', [99], R],
      ['a fractional status', [500.5], R],
      ['a status string', ['503'], T],
    ],
  },
  methods: {
    kind: array,
    valid: ['GET'],
    extra: [
      ['a method that is not a string', [1], T],
      ['a method with a space', ['GE T'], T],
    ],
  },
  retryNonIdempotent: { kind: boolean, valid: true },
  bufferBody: { kind: boolean, valid: true },
  attempts: {
    kind: array,
    valid: [{}],
    extra: [
      ['a function', () => undefined, OK],
      ['an empty list', [], R],
      ['a non-object entry', [1], T],
    ],
  },
  onRequest: { kind: fn(false), valid: ok },
  onResponse: { kind: fn(false), valid: ok },
  throwOnStatus: { kind: boolean, valid: true },
  fetch: { kind: fn(false), valid: async () => new Response('') },
};

/** Backoff options where a method name cannot work (nothing is decorated): retry, createFetch. */
const undecorated: Options<BackoffOptions> = {
  ...backoffOptions,
  ...Object.fromEntries(
    (['policy', 'onRetry', 'afterFailure', 'onGiveup', 'onSuccess'] as const).map((name) => [
      name,
      { ...backoffOptions[name], except: { 'numeric string': T } },
    ]),
  ),
};

const createFetchOptions: Options<CreateFetchOptions> = {
  ...undecorated,
  // 'context: false' is refused: the attempt's signal (only the context carries it) cancels requests.
  context: { kind: boolean, valid: true, extra: [['false', false, T, ['not supported']]] },
  ...fetchOnly,
};

const jitter: Option = { kind: enumeration, valid: 'full', extra: [["'random'", 'random', T]] };

const mapOptions: Options<MapOptions> = {
  concurrency: {
    kind: numeric(
      {
        negative: R,
        NaN: R,
        Infinity: OK,
        '-0': R,
        'non-integer': R,
        '2^31': OK,
        zero: R,
        'sub-millisecond': R,
      },
      T,
    ),
    valid: 4,
  },
  stopOnError: { kind: boolean, valid: false },
  settled: { kind: boolean, valid: true },
  signal: { kind: instance, valid: signal },
  onProgress: { kind: fn(false), valid: ok },
};
const rerunOptions: Options<RerunOptions> = without(mapOptions, 'settled', 'stopOnError');

const breakerOptions: Options<CircuitBreakerOptions> = {
  whenOpen: { kind: enumeration, valid: 'wait', extra: [["'open'", 'open', T]] },
  consecutiveFailures: {
    kind: count({ limit: false, nullable: true }),
    valid: 3,
    // null switches the rule off; the other rule must then be on.
    with: { failureRatio: 0.5 },
  },
  failureRatio: {
    kind: numeric(
      {
        negative: R,
        NaN: R,
        Infinity: R,
        '-0': R,
        'non-integer': R,
        '2^31': R,
        zero: R,
        'sub-millisecond': OK,
      },
      OK,
    ),
    valid: 0.5,
  },
  window: {
    kind: policyTime({ zero: false, limit: false }),
    valid: 5000,
    with: { failureRatio: 0.5 },
  },
  minimumCalls: { kind: count({ limit: false }), valid: 5, with: { failureRatio: 0.5 } },
  halfOpenAfter: { kind: policyTime({ zero: false, limit: false }), valid: 500 },
  onStateChange: { kind: fn(false), valid: ok },
  name: { kind: string, valid: 'db' },
};

/** An integer in (0, 1000]. */
const maxTokens = numeric({
  negative: R,
  NaN: R,
  Infinity: R,
  '-0': R,
  'non-integer': R,
  '2^31': R,
  zero: R,
  'sub-millisecond': R,
});
/** A finite number >= 0 (a cost) or > 0 (the capacity). */
const quota = (zero: boolean) =>
  numeric({
    negative: R,
    NaN: R,
    Infinity: R,
    '-0': R,
    'non-integer': OK,
    '2^31': OK,
    zero: zero ? OK : R,
    'sub-millisecond': OK,
  });

const lockFields: Options<Lock<unknown>> = {
  acquire: { kind: fn(false), valid: async () => 'lease', label: "'lock.acquire'" },
  release: { kind: fn(false), valid: async () => {}, label: "'lock.release'" },
  renew: { kind: fn(false), valid: async () => true, label: "'lock.renew'" },
  ttl: {
    kind: numeric({
      negative: R,
      NaN: R,
      Infinity: R,
      '-0': R,
      'non-integer': OK,
      '2^31': R,
      zero: R,
      'sub-millisecond': OK,
    }),
    valid: 1000,
    label: "'lock.ttl'",
  },
};

/** Fails every checkout with this, so that a valid call to query or transaction ends with it. */
const NO_CLIENT = new Error('no client (the fake pool)');
const pool: PgPool = {
  connect: ((callback?: (error: unknown) => void) => {
    if (callback === undefined) return Promise.reject(NO_CLIENT);
    callback(NO_CLIENT);
    return undefined;
  }) as PgPool['connect'],
};
const redis = { eval: async () => null } as unknown as RedisLockClient;

/** advisoryLock's `checkEvery`: > 0 ms, 3 × it at most 2^31 - 1; `null`: no liveness checks. */
const checkEvery: Option = {
  kind: numeric(
    {
      negative: R,
      NaN: R,
      Infinity: R,
      '-0': R,
      'non-integer': OK,
      '2^31': R,
      zero: R,
      'sub-millisecond': OK,
    },
    OK,
  ),
  valid: 100,
  extra: [['over (2^31 - 1) / 3', 715_827_883, R]],
};

const entries: Entry[] = [
  {
    name: 'new Backoff(options)',
    where: 'Backoff',
    optionsObject: true,
    baseline: {},
    options: backoffOptions,
    call: (input) => new Backoff(input),
  },
  {
    name: 'asyncbackoff(options)',
    where: 'asyncbackoff',
    optionsObject: true,
    baseline: {},
    options: backoffOptions,
    call: (input) => asyncbackoff(input),
  },
  {
    name: 'asyncbackoff(attemptTimeout, deadline, pause)',
    where: 'asyncbackoff',
    optionsObject: false,
    baseline: { attemptTimeout: 100, deadline: 1000, pause: 0 },
    options: {
      attemptTimeout: backoffOptions.attemptTimeout,
      deadline: backoffOptions.deadline,
      pause: { ...backoffOptions.pause, extra: [] },
    },
    call: ({ attemptTimeout, deadline, pause }) =>
      asyncbackoff(attemptTimeout as number, deadline as number, pause as number),
  },
  {
    name: 'asyncbackoff(100, 1000, 0, options)',
    where: 'asyncbackoff',
    optionsObject: true,
    baseline: {},
    options: trailingOptions,
    call: (input) => asyncbackoff(100, 1000, 0, input),
  },
  {
    name: 'asyncretry(maxTries)',
    where: 'asyncretry',
    optionsObject: false,
    baseline: { maxTries: 3 },
    // Documented as "an integer >= 1": no Infinity (use new Backoff for no limit).
    options: { maxTries: { kind: count({ limit: false }), valid: 5 } },
    call: ({ maxTries }) => asyncretry(maxTries as number),
  },
  {
    name: 'asyncretry(3, options)',
    where: 'asyncretry',
    optionsObject: true,
    baseline: {},
    options: retryOptions,
    call: (input) => asyncretry(3, input),
  },
  {
    name: 'retry(fn, options)',
    where: 'retry',
    rejects: true,
    optionsObject: true,
    baseline: {},
    options: undecorated,
    call: (input) => retry(ok, input),
  },
  {
    name: 'backoff.withSignal(signal)',
    where: 'Backoff.withSignal',
    optionsObject: false,
    baseline: { signal },
    options: { signal: { kind: instance, valid: new AbortController().signal } },
    call: ({ signal }) => new Backoff().withSignal(signal as AbortSignal),
  },
  {
    name: 'backoff.map(items, fn, options)',
    where: 'Backoff.map',
    rejects: true,
    optionsObject: true,
    baseline: {},
    options: mapOptions,
    call: (input) => new Backoff().map([1, 2], ok, input),
  },
  {
    name: 'rerunFailed(backoff, outcomes, fn, options)',
    where: 'rerunFailed',
    rejects: true,
    optionsObject: true,
    baseline: {},
    options: rerunOptions,
    call: (input) => rerunFailed(new Backoff(), [], ok, input),
  },
  {
    name: 'rerunFailed(backoff, outcomes, fn): the backoff',
    where: 'rerunFailed',
    rejects: true,
    optionsObject: false,
    baseline: { backoff: new Backoff() },
    options: { backoff: { kind: instance, valid: new Backoff() } },
    call: ({ backoff }) => rerunFailed(backoff as Backoff, [], ok),
  },
  {
    name: 'rerunFailed(backoff, outcomes, fn)',
    where: 'rerunFailed',
    rejects: true,
    optionsObject: false,
    baseline: { fn: ok },
    options: { fn: { kind: fn(false), valid: () => 2 } },
    call: ({ fn }) => rerunFailed(new Backoff(), [], fn as () => number),
  },
  {
    name: 'constant(ms, options)',
    where: 'constant',
    optionsObject: true,
    baseline: {},
    options: {
      jitter,
      max: { kind: strategyTime, valid: 100 },
    } satisfies Options<ConstantOptions>,
    call: (input) => constant(0, input),
  },
  {
    name: 'constant(ms)',
    where: 'constant',
    optionsObject: false,
    baseline: { ms: 10 },
    options: { ms: { kind: strategyTime, valid: 20 } },
    call: ({ ms }) => constant(ms as number),
  },
  {
    name: 'linear(options)',
    where: 'linear',
    optionsObject: true,
    baseline: { initial: 0, step: 0 },
    options: {
      initial: { kind: strategyTime, valid: 10 },
      step: { kind: strategyTime, valid: 10 },
      max: { kind: strategyTime, valid: 100 },
      jitter,
    } satisfies Options<LinearOptions>,
    call: (input) => linear(input as unknown as LinearOptions),
  },
  {
    name: 'exponential(options)',
    where: 'exponential',
    optionsObject: true,
    baseline: { initial: 0 },
    options: {
      initial: { kind: strategyTime, valid: 10 },
      factor: {
        kind: numeric({
          negative: R,
          NaN: R,
          Infinity: R,
          '-0': R,
          'non-integer': OK,
          '2^31': OK,
          zero: R,
          'sub-millisecond': R,
        }),
        valid: 3,
      },
      max: { kind: strategyTime, valid: 100 },
      jitter,
    } satisfies Options<ExponentialOptions>,
    call: (input) => exponential(input as unknown as ExponentialOptions),
  },
  {
    name: 'fibonacci(options)',
    where: 'fibonacci',
    optionsObject: true,
    baseline: { initial: 0 },
    options: {
      initial: { kind: strategyTime, valid: 10 },
      max: { kind: strategyTime, valid: 100 },
      jitter,
    } satisfies Options<FibonacciOptions>,
    call: (input) => fibonacci(input as unknown as FibonacciOptions),
  },
  {
    name: 'delays(list, options)',
    where: 'delays',
    optionsObject: true,
    baseline: {},
    options: {
      jitter,
      max: { kind: strategyTime, valid: 100 },
    } satisfies Options<DelaysOptions>,
    call: (input) => delays([0], input),
  },
  {
    name: 'delays(list)',
    where: 'delays',
    optionsObject: false,
    baseline: { list: [10] },
    options: {
      list: { kind: array, valid: [1, 2], label: 'the list', extra: [['an empty list', [], R]] },
    },
    call: ({ list }) => delays(list as number[]),
  },
  {
    name: 'delays([entry])',
    where: 'delays',
    optionsObject: false,
    baseline: { entry: 10 },
    options: { entry: { kind: strategyTime, valid: 20, label: "'list[0]'" } },
    call: ({ entry }) => delays([entry as number]),
  },
  {
    name: 'randomBetween(min, max)',
    where: 'randomBetween',
    optionsObject: false,
    baseline: { min: 0, max: 100 },
    options: {
      min: { kind: strategyTime, valid: 10 },
      max: { kind: strategyTime, valid: 50 },
    },
    call: ({ min, max }) => randomBetween(min as number, max as number),
  },
  {
    name: 'fromFunction(fn)',
    where: 'fromFunction',
    optionsObject: false,
    baseline: { fn: ok },
    options: { fn: { kind: fn(false), valid: () => 2, label: 'the argument' } },
    call: ({ fn }) => fromFunction(fn as () => number),
  },
  {
    name: 'seededRandom(seed)',
    where: 'seededRandom',
    optionsObject: false,
    baseline: { seed: 1 },
    options: {
      seed: {
        // Any integer: only its low 32 bits are used.
        kind: numeric({
          negative: OK,
          NaN: R,
          Infinity: R,
          '-0': OK,
          'non-integer': R,
          '2^31': OK,
          zero: OK,
          'sub-millisecond': R,
        }),
        valid: 42,
      },
    },
    call: ({ seed }) => seededRandom(seed as number),
  },
  {
    name: 'tokenBucket(options)',
    where: 'tokenBucket',
    optionsObject: true,
    baseline: { maxTokens: 10, tokenRatio: 0.1 },
    options: {
      maxTokens: { kind: maxTokens, valid: 100, extra: [['1001', 1001, R]] },
      tokenRatio: {
        kind: numeric({
          negative: R,
          NaN: R,
          Infinity: R,
          '-0': R,
          'non-integer': R,
          '2^31': R,
          zero: R,
          'sub-millisecond': OK,
        }),
        valid: 0.25,
        extra: [['4 decimal places', 0.0001, R]],
      },
    } satisfies Options<TokenBucketOptions>,
    call: (input) => tokenBucket(input as unknown as TokenBucketOptions),
  },
  {
    name: 'retryQuota(options)',
    where: 'retryQuota',
    optionsObject: true,
    baseline: {},
    options: {
      capacity: { kind: quota(false), valid: 100 },
      retryCost: { kind: quota(true), valid: 2 },
      timeoutCost: { kind: quota(true), valid: 4 },
      noRetryIncrement: { kind: quota(true), valid: 2 },
    } satisfies Options<RetryQuotaOptions>,
    call: (input) => retryQuota(input),
  },
  {
    name: 'circuitBreaker(options)',
    where: 'circuitBreaker',
    optionsObject: true,
    baseline: {},
    options: breakerOptions,
    call: (input) => circuitBreaker(input),
  },
  {
    name: 'createFetch(options)',
    where: 'createFetch',
    optionsObject: true,
    baseline: {},
    options: createFetchOptions,
    call: (input) => createFetch(input),
  },
  {
    name: 'createFetch(backoff, options)',
    where: 'createFetch',
    optionsObject: true,
    baseline: {},
    options: fetchOnly,
    call: (input) => createFetch(new Backoff(), input),
  },
  {
    name: 'serverTimeout(options)',
    where: 'serverTimeout',
    optionsObject: true,
    baseline: {},
    options: {
      max: { kind: count({ limit: false }), valid: 100 },
    } satisfies Options<ServerTimeoutOptions>,
    call: (input) => serverTimeout(input),
  },
  {
    name: 'backoff.withLock(lock, body)',
    where: 'Backoff.withLock',
    rejects: true,
    optionsObject: false,
    baseline: { acquire: async () => 'lease', release: async () => {}, ttl: 1000 },
    options: lockFields,
    call: (input) => new Backoff({ maxTries: 1 }).withLock(input as unknown as Lock<unknown>, ok),
  },
  {
    name: 'backoff.withLock(lock, body): body',
    where: 'Backoff.withLock',
    rejects: true,
    optionsObject: false,
    baseline: { body: ok },
    options: { body: { kind: fn(false), valid: () => 2 } },
    call: ({ body }) =>
      new Backoff().withLock(
        { acquire: async () => 'lease', release: async () => {} },
        body as () => number,
      ),
  },
  {
    name: 'query(pool, text, values)',
    where: 'query',
    rejects: true,
    optionsObject: false,
    baseline: { text: 'SELECT 1' },
    options: {
      text: { kind: string, valid: 'SELECT 2' },
      values: { kind: array, valid: [1] },
    },
    call: ({ text, values }) => query(pool, text as string, values as unknown[]),
  },
  {
    name: 'transaction(pool, fn, options)',
    where: 'transaction',
    rejects: true,
    optionsObject: true,
    baseline: {},
    options: {
      isolation: {
        kind: enumeration,
        valid: 'serializable',
        extra: [["'snapshot'", 'snapshot', T]],
      },
      readOnly: { kind: boolean, valid: true },
    } satisfies Options<TransactionOptions>,
    call: (input) => transaction(pool, ok, input),
  },
  {
    name: 'advisoryLock(pool, key, options)',
    where: 'advisoryLock',
    optionsObject: true,
    baseline: {},
    options: {
      checkEvery,
    } satisfies Options<AdvisoryLockOptions>,
    call: (input) => advisoryLock(pool, 'key', input),
  },
  {
    name: 'advisoryLock(pool, key)',
    where: 'advisoryLock',
    optionsObject: false,
    baseline: { key: 1 },
    options: {
      key: {
        // A safe integer (of any sign), a bigint or a string.
        kind: {
          outcomes: {
            negative: OK,
            NaN: R,
            Infinity: R,
            '-0': OK,
            'non-integer': R,
            '2^31': OK,
            zero: OK,
            'sub-millisecond': R,
            'wrong type': T,
            'numeric string': OK,
            null: T,
          },
          wrongType: true,
        },
        valid: 2n,
        extra: [
          ['2^53', 2 ** 53, R],
          ['2^63 (a bigint)', 2n ** 63n, R],
        ],
      },
    },
    call: ({ key }) => advisoryLock(pool, key as number),
  },
  {
    name: 'redisLock(client, key, options)',
    where: 'redisLock',
    optionsObject: true,
    baseline: { ttl: 1000 },
    options: {
      ttl: { kind: count({ limit: false }), valid: 5000 },
    } satisfies Options<RedisLockOptions>,
    call: (input) => redisLock(redis, 'lock', input as unknown as RedisLockOptions),
  },
  {
    name: 'redisLock(client, key)',
    where: 'redisLock',
    optionsObject: false,
    baseline: { key: 'lock' },
    options: { key: { kind: string, valid: '{jobs}:lock', extra: [["''", '', T]] } },
    call: ({ key }) => redisLock(redis, key as string, { ttl: 1000 }),
  },
];

// ---------------------------------------------------------------------------------------------
// Rendering and running.

/** How a message shows the value given (`describe` in src/validate.ts, written out here). */
function shown(value: unknown): string {
  if (typeof value === 'string') return `'${value}' (a string)`;
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'boolean' || typeof value === 'bigint')
    return `${String(value)} (a ${typeof value})`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object')
    return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return String(value);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

type Settled = { sync: boolean; error?: unknown; value?: unknown };

async function settle(entry: Entry, input: Record<string, unknown>): Promise<Settled> {
  let returned: unknown;
  try {
    returned = entry.call(input);
  } catch (error) {
    return { sync: true, error };
  }
  if (entry.rejects) {
    expect(returned, `${entry.name} is documented to return a promise`).toBeInstanceOf(Promise);
    try {
      return { sync: false, value: await returned };
    } catch (error) {
      return { sync: false, error };
    }
  }
  return { sync: true, value: returned };
}

/**
 * A valid input must be accepted: for query and transaction, up to the fake pool's checkout; for
 * retry, a deadline of 0 ends in a DeadlineExceededError, as documented.
 */
function expectAccepted(entry: Entry, settled: Settled): void {
  if (settled.error !== NO_CLIENT && !(settled.error instanceof DeadlineExceededError))
    expect(settled.error).toBeUndefined();
  expect(
    settled.sync,
    `${entry.name} must ${entry.rejects ? 'reject' : 'throw synchronously'}`,
  ).toBe(!entry.rejects);
}

function expectRefused(
  entry: Entry,
  settled: Settled,
  error: 'RangeError' | 'TypeError',
  parts: readonly string[],
): void {
  expect(settled.error, 'the bad value was accepted').toBeDefined();
  expect(settled.sync, `${entry.name} must ${entry.rejects ? 'reject' : 'throw at once'}`).toBe(
    !entry.rejects,
  );
  const thrown = settled.error as Error;
  expect(thrown.constructor.name, thrown.message).toBe(error);
  expect(thrown.message.startsWith(`${entry.where}: `), thrown.message).toBe(true);
  for (const part of parts) expect(thrown.message).toMatch(new RegExp(escapeRegExp(part)));
}

interface Case {
  readonly entry: Entry;
  readonly title: string;
  readonly input: Record<string, unknown>;
  readonly outcome: Outcome;
  readonly parts: readonly string[];
}

function valueFor(kind: Kind, valueClass: ValueClass): unknown {
  if (valueClass === 'wrong type') return kind.wrongType;
  if (valueClass === 'numeric string') return '100';
  if (valueClass === 'null') return null;
  return NUMERIC[valueClass];
}

function casesOf(entry: Entry): Case[] {
  const cases: Case[] = [];
  const base = entry.baseline;
  for (const [key, option] of Object.entries(entry.options)) {
    const label = option.label ?? `'${key}`;
    const put = (
      title: string,
      value: unknown,
      outcome: Outcome,
      parts: readonly string[] = [shown(value)],
    ) =>
      cases.push({
        entry,
        title: `${key}: ${title}`,
        input: { ...base, ...option.with, [key]: value },
        outcome,
        parts: [label, ...parts],
      });
    put(`a valid value (${shown(option.valid)})`, option.valid, OK);
    for (const valueClass of Object.keys(option.kind.outcomes) as ValueClass[]) {
      const outcome = option.except?.[valueClass] ?? option.kind.outcomes[valueClass];
      put(valueClass, valueFor(option.kind, valueClass), outcome);
    }
    for (const [title, value, outcome, parts] of option.extra ?? [])
      put(title, value, outcome, parts ?? (Array.isArray(value) ? [] : [shown(value)]));
    if (entry.optionsObject) {
      // The option on a prototype: a spread or a copy would drop it.
      const inherited = Object.assign(Object.create({ [key]: option.valid }), base, option.with);
      delete inherited[key];
      cases.push({
        entry,
        title: `${key}: inherited key`,
        input: inherited,
        outcome: T,
        parts: [`'${key}'`, 'inherited'],
      });
    }
  }
  if (entry.optionsObject) {
    cases.push({
      entry,
      title: 'unknown key',
      input: { ...base, maxDelay: 100 },
      outcome: T,
      parts: ["unknown option 'maxDelay'"],
    });
    cases.push({
      entry,
      title: 'unknown key, inherited',
      input: Object.assign(Object.create({ maxDelay: 100 }), base),
      outcome: T,
      parts: ["'maxDelay'", 'inherited'],
    });
    const hidden = { ...base };
    Object.defineProperty(hidden, 'maxDelay', { value: 100, enumerable: false });
    cases.push({
      entry,
      title: 'unknown key (non-enumerable)',
      input: hidden,
      outcome: T,
      parts: ["unknown option 'maxDelay'"],
    });
  }
  return cases;
}

const cases = entries.flatMap(casesOf);

describe('bad-input matrix', () => {
  it('has cases for every entry, and enough of them', () => {
    expect(new Set(cases.map((c) => c.entry.name)).size).toBe(entries.length);
    expect(cases.length).toBeGreaterThan(900);
  });

  it.each(entries.map((entry) => [entry.name, entry] as const))(
    '%s: the baseline is accepted',
    async (_, entry) => {
      expectAccepted(entry, await settle(entry, { ...entry.baseline }));
    },
  );

  it.each(cases.map((c) => [`${c.entry.name} — ${c.title} → ${c.outcome}`, c] as const))(
    '%s',
    async (_, { entry, input, outcome, parts }) => {
      const settled = await settle(entry, input);
      if (outcome === OK) expectAccepted(entry, settled);
      else expectRefused(entry, settled, outcome, parts);
    },
  );
});
