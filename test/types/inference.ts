/**
 * Compile-time tests (type-checked by `npm run typecheck`, never run): inference of `execute`,
 * `wrap`, the decorator factories used as function wrappers, `retryIf`, `currentAttempt` and the
 * error classes. Every `@ts-expect-error` line must be an error, or tsc reports it unused.
 */
import { expectTypeOf } from 'vitest';
import {
  type AttemptContext,
  AttemptTimeoutError,
  asyncbackoff,
  asyncretry,
  Backoff,
  type BackoffDecorator,
  type BackoffStatistics,
  currentAttempt,
  DeadlineExceededError,
  RetryConditionError,
  retry as retryOnce,
  TimeoutError,
} from '../../src/index.js';

interface User {
  readonly id: string;
  readonly name: string;
}
declare function findUser(id: string, fresh?: boolean): Promise<User>;
declare function countSync(a: number, b: number): number;

const backoff = new Backoff({ attemptTimeout: 100, deadline: 1000 });
expectTypeOf(backoff).toEqualTypeOf<Backoff<unknown>>();

// ---------------------------------------------------------------------------------------------
// execute: arguments and result are inferred from fn
expectTypeOf(backoff.execute(async (a: number, _b: string) => a, 1, 'x')).toEqualTypeOf<
  Promise<number>
>();
expectTypeOf(backoff.execute(findUser, 'u1')).toEqualTypeOf<Promise<User>>();
expectTypeOf(backoff.execute(findUser, 'u1', true)).toEqualTypeOf<Promise<User>>();
expectTypeOf(backoff.execute(countSync, 1, 2)).toEqualTypeOf<Promise<number>>();
expectTypeOf(backoff.execute(() => 'sync')).toEqualTypeOf<Promise<string>>();
expectTypeOf(backoff.execute(async () => {})).toEqualTypeOf<Promise<void>>();
// a PromiseLike result is unwrapped
declare const thenable: PromiseLike<Date>;
expectTypeOf(backoff.execute(() => thenable)).toEqualTypeOf<Promise<Date>>();

// wrong argument types, too few arguments
// @ts-expect-error 'x' is not a number
backoff.execute(async (a: number, _b: string) => a, 'x', 'y');
// @ts-expect-error 1 is not a string
backoff.execute(findUser, 1);
// @ts-expect-error the id is missing
backoff.execute(findUser);
// @ts-expect-error 'yes' is not a boolean
backoff.execute(findUser, 'u1', 'yes');
// @ts-expect-error fn must be a function
backoff.execute('findUser', 'u1');

// the result is not `any`: using it as another type is an error
async function useResult(): Promise<void> {
  const user = await backoff.execute(findUser, 'u1');
  expectTypeOf(user).toEqualTypeOf<User>();
  // @ts-expect-error User has no `age`
  user.age;
}
void useResult;

// ---------------------------------------------------------------------------------------------
// wrap: parameters, `this` and result kept
const wrappedFind = backoff.wrap(findUser);
expectTypeOf(wrappedFind).parameters.toEqualTypeOf<[id: string, fresh?: boolean]>();
expectTypeOf(wrappedFind).returns.toEqualTypeOf<Promise<User>>();
expectTypeOf(wrappedFind('u1')).toEqualTypeOf<Promise<User>>();
// @ts-expect-error 1 is not a string
wrappedFind(1);

interface Repo {
  readonly table: string;
}
const withThis = backoff.wrap(function (this: Repo, id: number) {
  return `${this.table}/${id}`;
});
expectTypeOf(withThis).toEqualTypeOf<(this: Repo, id: number) => Promise<string>>();
expectTypeOf(withThis).thisParameter.toEqualTypeOf<Repo>();
const repo = { table: 'users', find: withThis };
expectTypeOf(repo.find(1)).toEqualTypeOf<Promise<string>>();
// @ts-expect-error `this` must be a Repo
withThis(1);
// @ts-expect-error `this` must be a Repo
({ find: withThis }).find(1);

// a sync function becomes async
expectTypeOf(backoff.wrap(countSync)).toEqualTypeOf<(a: number, b: number) => Promise<number>>();

// ---------------------------------------------------------------------------------------------
// asyncbackoff / asyncretry as function wrappers
const guarded = asyncbackoff(100, 1000)(findUser);
expectTypeOf(guarded).parameters.toEqualTypeOf<[id: string, fresh?: boolean]>();
expectTypeOf(guarded).returns.toEqualTypeOf<Promise<User>>();
expectTypeOf(asyncbackoff(100, 1000, 10, TypeError, RangeError)(countSync)).toEqualTypeOf<
  (a: number, b: number) => Promise<number>
>();
expectTypeOf(
  asyncbackoff(100, 1000, 10, TypeError, { maxTries: 3 })(findUser),
).returns.toEqualTypeOf<Promise<User>>();
expectTypeOf(asyncbackoff({ attemptTimeout: 100 })(findUser)).returns.toEqualTypeOf<
  Promise<User>
>();
expectTypeOf(asyncretry(3)(findUser)).returns.toEqualTypeOf<Promise<User>>();
expectTypeOf(asyncretry(3, { exceptions: [TypeError] })(countSync)).toEqualTypeOf<
  (a: number, b: number) => Promise<number>
>();
expectTypeOf(asyncretry(3)(withThis)).thisParameter.toEqualTypeOf<Repo>();
// @ts-expect-error 1 is not a string
asyncretry(3)(findUser)(1);

// the factories' own parameters
// @ts-expect-error maxTries is the first argument of asyncretry, not an option
asyncretry(3, { maxTries: 2 });
// @ts-expect-error pause is given positionally, not in the trailing options
asyncbackoff(100, 1000, 0, { pause: 5 });
// @ts-expect-error unknown option
asyncbackoff({ timeout: 100 });
// @ts-expect-error a string is not an error class
asyncbackoff(100, 1000, 0, 'TypeError');
// @ts-expect-error maxTries must be a number
asyncretry('3');

// decorator.backoff and its statistics
const retry = asyncretry(3);
expectTypeOf(retry).toEqualTypeOf<BackoffDecorator<unknown>>();
expectTypeOf(retry.backoff).toEqualTypeOf<Backoff<unknown>>();
expectTypeOf(retry.backoff.statistics).toEqualTypeOf<BackoffStatistics>();
expectTypeOf(retry.backoff.statistics.attempts).toEqualTypeOf<number>();
// @ts-expect-error backoff is read-only
retry.backoff = new Backoff();

// ---------------------------------------------------------------------------------------------
// retryIf: TResult is inferred from its annotation; every guarded function must return it
interface Job {
  readonly state: 'pending' | 'done' | 'failed';
}
declare function pollJob(id: string): Promise<Job>;
declare function fetchCount(): Promise<number>;

const poller = new Backoff({ retryIf: (job: Job) => job.state === 'pending', pause: 100 });
expectTypeOf(poller).toEqualTypeOf<Backoff<Job>>();
expectTypeOf(poller.execute(pollJob, 'j1')).toEqualTypeOf<Promise<Job>>();
// @ts-expect-error fetchCount returns a number, retryIf inspects a Job
poller.execute(fetchCount);
// @ts-expect-error same through wrap
poller.wrap(fetchCount);
// a subtype of TResult is fine and keeps its own type
interface DetailedJob extends Job {
  readonly progress: number;
}
declare function pollDetailed(id: string): Promise<DetailedJob>;
expectTypeOf(poller.execute(pollDetailed, 'j1')).toEqualTypeOf<Promise<DetailedJob>>();

const retryIfDecorator = asyncretry(5, { retryIf: (n: number) => n < 0 });
expectTypeOf(retryIfDecorator).toEqualTypeOf<BackoffDecorator<number>>();
expectTypeOf(retryIfDecorator(fetchCount)).returns.toEqualTypeOf<Promise<number>>();
// @ts-expect-error pollJob returns a Job, not a number
retryIfDecorator(pollJob);

const backoffRetryIf = asyncbackoff({ retryIf: (job: Job) => job.state !== 'done' });
expectTypeOf(backoffRetryIf(pollJob)).returns.toEqualTypeOf<Promise<Job>>();
// @ts-expect-error fetchCount returns a number
backoffRetryIf(fetchCount);

// retryIf in the trailing options of the positional form
const positionalRetryIf = asyncbackoff(100, 1000, 10, {
  retryIf: (job: Job) => job.state === 'pending',
});
expectTypeOf(positionalRetryIf(pollJob)).returns.toEqualTypeOf<Promise<Job>>();
// @ts-expect-error fetchCount returns a number
positionalRetryIf(fetchCount);

// onSuccess sees the inferred TResult
new Backoff({
  retryIf: (job: Job) => job.state === 'pending',
  onSuccess: (event) => {
    expectTypeOf(event.result).toEqualTypeOf<Job>();
  },
});

// RetryConditionError carries the last result
expectTypeOf(new RetryConditionError<Job>({ state: 'pending' }, 3).lastResult).toEqualTypeOf<Job>();
expectTypeOf(new RetryConditionError('x', 1).lastResult).toEqualTypeOf<string>();

// ---------------------------------------------------------------------------------------------
// currentAttempt()
expectTypeOf(currentAttempt()).toEqualTypeOf<AttemptContext | undefined>();
expectTypeOf(currentAttempt).parameters.toEqualTypeOf<[]>();
declare const attempt: AttemptContext;
expectTypeOf(attempt.signal).toEqualTypeOf<AbortSignal>();
expectTypeOf(attempt.attempt).toEqualTypeOf<number>();
expectTypeOf(attempt.remaining).toEqualTypeOf<number>();
// @ts-expect-error the context is read-only
attempt.attempt = 2;
// @ts-expect-error possibly undefined outside an attempt
currentAttempt().signal;

// ---------------------------------------------------------------------------------------------
// error classes: literal names and codes
expectTypeOf(new AttemptTimeoutError(1, 1).name).toEqualTypeOf<'AttemptTimeoutError'>();
expectTypeOf(new AttemptTimeoutError(1, 1).code).toEqualTypeOf<'ASYNCBACKOFF_ATTEMPT_TIMEOUT'>();
expectTypeOf(new AttemptTimeoutError(1, 1).timeout).toEqualTypeOf<number>();
expectTypeOf(new AttemptTimeoutError(1, 1).attempt).toEqualTypeOf<number>();

expectTypeOf(new DeadlineExceededError(1, 1).name).toEqualTypeOf<'DeadlineExceededError'>();
expectTypeOf(
  new DeadlineExceededError(1, 1).code,
).toEqualTypeOf<'ASYNCBACKOFF_DEADLINE_EXCEEDED'>();
expectTypeOf(new DeadlineExceededError(1, 1).attempts).toEqualTypeOf<number>();

expectTypeOf(new RetryConditionError(1, 1).name).toEqualTypeOf<'RetryConditionError'>();
expectTypeOf(new RetryConditionError(1, 1).code).toEqualTypeOf<'ASYNCBACKOFF_RETRY_CONDITION'>();

expectTypeOf(new TimeoutError('x', 1).name).toEqualTypeOf<
  'TimeoutError' | 'AttemptTimeoutError' | 'DeadlineExceededError'
>();
// BUG (src/errors.ts): TimeoutError's `code` is typed `string` while its `name` is the literal
// union; it should be the union of the three codes its family uses, so that `switch (error.code)`
// on a caught TimeoutError narrows and typos are caught.
expectTypeOf(new TimeoutError('x', 1).code).toEqualTypeOf<
  'ASYNCBACKOFF_TIMEOUT' | 'ASYNCBACKOFF_ATTEMPT_TIMEOUT' | 'ASYNCBACKOFF_DEADLINE_EXCEEDED'
>();

// instanceof narrows
declare const caught: unknown;
if (caught instanceof AttemptTimeoutError) {
  expectTypeOf(caught).toEqualTypeOf<AttemptTimeoutError>();
  expectTypeOf(caught.attempt).toEqualTypeOf<number>();
}
if (caught instanceof TimeoutError) {
  expectTypeOf(caught.timeout).toEqualTypeOf<number>();
}
// both timeouts are TimeoutErrors and Errors
expectTypeOf<AttemptTimeoutError>().toExtend<TimeoutError>();
expectTypeOf<DeadlineExceededError>().toExtend<TimeoutError>();
expectTypeOf<TimeoutError>().toExtend<Error>();
expectTypeOf<RetryConditionError>().toExtend<Error>();

// ErrorOptions pass through the constructors
new AttemptTimeoutError(1, 1, { cause: new Error('x') });
new DeadlineExceededError(1, 1, { cause: 'x' });
new RetryConditionError(1, 1, { cause: 1 });
new TimeoutError('m', 1, { cause: null });
// @ts-expect-error the attempt number is required
new AttemptTimeoutError(1);

// retry(fn, options): retryIf and onSuccess are typed from fn's result without annotations.
{
  interface Task {
    status: 'run' | 'done' | 'failed';
    id: string;
  }
  const getTask = async (): Promise<Task> => ({ status: 'done', id: 'x' });
  const polled = retryOnce(getTask, {
    retryIf: (task) => {
      expectTypeOf(task).toEqualTypeOf<Task>();
      return task.status === 'run';
    },
    onSuccess: (event) => {
      expectTypeOf(event.result).toEqualTypeOf<Task>();
    },
  });
  expectTypeOf(polled).toEqualTypeOf<Promise<Task>>();
  // @ts-expect-error: a Task has no 'state'
  retryOnce(getTask, { retryIf: (task) => task.state === 'run' });
}
