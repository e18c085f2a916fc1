/**
 * Compile-time tests for TC39 (TypeScript 5 default, no `experimentalDecorators`) method
 * decorators. Type-checked only, never run.
 */
import { expectTypeOf } from 'vitest';
import { asyncbackoff, asyncretry, type Backoff, type BackoffDecorator } from '../../src/index.js';

interface Row {
  readonly id: number;
}
interface Job {
  readonly state: 'pending' | 'done';
}

const retry = asyncretry(3);
const refresh: unique symbol = Symbol('refresh');
const guard = asyncbackoff(100, 1000, 10, TypeError, { maxTries: 3 });
const polling = asyncretry(10, { retryIf: (job: Job) => job.state === 'pending' });
expectTypeOf(polling).toEqualTypeOf<BackoffDecorator<Job>>();

class Repository {
  table = 'rows';
  #secret = 1;

  @retry
  async find(id: number): Promise<Row> {
    return { id: id + this.#secret };
  }

  @guard
  async findAll(limit: number, offset = 0): Promise<Row[]> {
    return [{ id: limit + offset }];
  }

  // inferred return type
  @retry
  async count() {
    return this.table.length;
  }

  // generic method
  @retry
  async get<T>(key: string): Promise<T> {
    return JSON.parse(key) as T;
  }

  @asyncbackoff({ attemptTimeout: 50 })
  static async ping(): Promise<'pong'> {
    return 'pong';
  }

  @retry
  async #hidden(): Promise<number> {
    return this.#secret;
  }

  callHidden(): Promise<number> {
    return this.#hidden();
  }

  @retry
  async [refresh](): Promise<void> {}

  @polling
  async poll(): Promise<Job> {
    return { state: 'done' };
  }

  // a method returning a subtype of retryIf's type
  @polling
  async pollDetailed(): Promise<Job & { readonly progress: number }> {
    return { state: 'done', progress: 1 };
  }

  // ---- compile errors -------------------------------------------------------------------------

  // @ts-expect-error a non-async method cannot be decorated: the decorator returns a promise
  @retry
  syncMethod(): number {
    return 1;
  }

  // BUG (src/decorators.ts): compiles today, because TypeScript lets a one-parameter signature
  // (the function-wrapper overload) serve as an ES decorator; the void method becomes async at
  // runtime and its synchronous throws turn into unhandled rejections.
  // @ts-expect-error a method returning void is not async either
  @retry
  fireAndForget(): void {}

  // @ts-expect-error retryIf inspects a Job; this method returns a number
  @polling
  async notAJob(): Promise<number> {
    return 1;
  }

  // @ts-expect-error a field is not a method
  @retry
  field = async () => 1;

  // BUG (src/decorators.ts): compiles today through the function-wrapper overload, then throws a
  // TypeError ("can only decorate methods") at class definition.
  // @ts-expect-error a getter is not a method
  @retry
  get value(): Promise<number> {
    return Promise.resolve(1);
  }
}

// The decorated methods keep their types.
const repository = new Repository();
expectTypeOf(repository.find).toEqualTypeOf<(id: number) => Promise<Row>>();
expectTypeOf(repository.find(1)).toEqualTypeOf<Promise<Row>>();
expectTypeOf(repository.findAll).parameters.toEqualTypeOf<[limit: number, offset?: number]>();
expectTypeOf(repository.count()).toEqualTypeOf<Promise<number>>();
expectTypeOf(repository.get<string>('"x"')).toEqualTypeOf<Promise<string>>();
expectTypeOf(Repository.ping()).toEqualTypeOf<Promise<'pong'>>();
expectTypeOf(repository.poll()).toEqualTypeOf<Promise<Job>>();
expectTypeOf(repository.pollDetailed()).resolves.toHaveProperty('progress');
expectTypeOf(repository[refresh]()).toEqualTypeOf<Promise<void>>();
expectTypeOf(repository.callHidden()).toEqualTypeOf<Promise<number>>();
// @ts-expect-error find takes a number
repository.find('1');

// A TC39 decorator on a method of a generic class, with `this` used inside.
class Counter<T> {
  items: T[] = [];

  @retry
  async push(item: T): Promise<number> {
    return this.items.push(item);
  }
}
expectTypeOf(new Counter<string>().push).toEqualTypeOf<(item: string) => Promise<number>>();
// @ts-expect-error a Counter<string> takes strings
new Counter<string>().push(1);

// Calling the decorator by hand with a method context type-checks the same way.
declare const context: ClassMethodDecoratorContext<
  Repository,
  (this: Repository, id: number) => Promise<Row>
>;
expectTypeOf(retry(Repository.prototype.find, context)).toEqualTypeOf<
  (this: Repository, id: number) => Promise<Row>
>();

// The factories return decorators whose backoff is typed.
expectTypeOf(guard.backoff).toEqualTypeOf<Backoff<unknown>>();
expectTypeOf(polling.backoff).toEqualTypeOf<Backoff<Job>>();
