/**
 * Compile-time tests for legacy (`experimentalDecorators: true`, NestJS-style) method decorators.
 * Type-checked only (test/types/tsconfig.legacy.json), never run.
 */
import { expectTypeOf } from 'vitest';
import { asyncbackoff, asyncretry, type BackoffDecorator } from '../../src/index.js';

interface Row {
  readonly id: number;
}
interface Job {
  readonly state: 'pending' | 'done';
}

const retry = asyncretry(3);
const polling = asyncretry(10, { retryIf: (job: Job) => job.state === 'pending' });
expectTypeOf(polling).toEqualTypeOf<BackoffDecorator<Job>>();

class UsersService {
  table = 'users';

  @retry
  async find(id: number): Promise<Row> {
    return { id: id + this.table.length };
  }

  @asyncbackoff(100, 1000, 10, TypeError, RangeError)
  async findMany(ids: readonly number[], limit?: number): Promise<Row[]> {
    return ids.slice(0, limit).map((id) => ({ id }));
  }

  @asyncbackoff({ attemptTimeout: 50, deadline: 200 })
  async count() {
    return this.table.length;
  }

  @retry
  static async ping(): Promise<'pong'> {
    return 'pong';
  }

  @retry
  async get<T>(key: string): Promise<T> {
    return JSON.parse(key) as T;
  }

  @polling
  async poll(): Promise<Job> {
    return { state: 'done' };
  }

  // ---- compile errors -------------------------------------------------------------------------

  // @ts-expect-error a non-async method cannot be decorated: the decorator returns a promise
  @retry
  syncMethod(): number {
    return 1;
  }

  // @ts-expect-error a method returning void is not async
  @retry
  fireAndForget(): void {}

  // @ts-expect-error retryIf inspects a Job; this method returns a number
  @polling
  async notAJob(): Promise<number> {
    return 1;
  }

  // @ts-expect-error a property is not a method
  @retry
  handler = async () => 1;
}

// The decorated methods keep their types.
const service = new UsersService();
expectTypeOf(service.find).toEqualTypeOf<(id: number) => Promise<Row>>();
expectTypeOf(service.findMany).parameters.toEqualTypeOf<[ids: readonly number[], limit?: number]>();
expectTypeOf(service.count()).toEqualTypeOf<Promise<number>>();
expectTypeOf(UsersService.ping()).toEqualTypeOf<Promise<'pong'>>();
expectTypeOf(service.get<Row>('{"id":1}')).toEqualTypeOf<Promise<Row>>();
expectTypeOf(service.poll()).toEqualTypeOf<Promise<Job>>();
// @ts-expect-error find takes a number
service.find('1');

// Calling the decorator by hand the way the legacy runtime does.
declare const descriptor: TypedPropertyDescriptor<(id: number) => Promise<Row>>;
expectTypeOf(retry(UsersService.prototype, 'find', descriptor)).toEqualTypeOf<
  TypedPropertyDescriptor<(id: number) => Promise<Row>>
>();
declare const syncDescriptor: TypedPropertyDescriptor<() => number>;
// @ts-expect-error the method must return a promise
retry(UsersService.prototype, 'syncMethod', syncDescriptor);
