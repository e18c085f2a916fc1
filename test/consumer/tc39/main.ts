// TC39 (standard) decorators, TypeScript 5's default: no experimentalDecorators.
import assert from 'node:assert/strict';
import {
  AttemptTimeoutError,
  asyncbackoff,
  asyncretry,
  Backoff,
  currentAttempt,
} from 'asyncbackoff';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

class TransientError extends Error {
  override name = 'TransientError';
}

interface Row {
  id: number;
  by: string;
  attempt: number;
}

class Repository {
  calls = 0;
  saves = 0;

  constructor(readonly name: string) {}

  /** The first attempt hangs until its signal aborts (after 100 ms); the second answers. */
  @asyncbackoff(100, 1000)
  async find(id: number): Promise<Row> {
    this.calls++;
    const { signal, attempt } = currentAttempt()!;
    if (attempt === 1) {
      await new Promise<never>((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    return { id, by: this.name, attempt };
  }

  @asyncretry(3, { exceptions: [TransientError], pause: 5 })
  async save(value: string): Promise<string> {
    this.saves++;
    if (this.saves < 3) throw new TransientError(`try again (${this.saves})`);
    return `${this.name} saved ${value}`;
  }

  @asyncbackoff(20, 200)
  async hang(): Promise<void> {
    await new Promise(() => {});
  }
}

/** Types: only methods returning a promise can be decorated. */
export class SyncMethod {
  // @ts-expect-error a decorated method must return a promise
  @asyncbackoff(100, 1000)
  sync(): number {
    return 1;
  }
}

const repo = new Repository('pg');
const started = performance.now();
const row = await repo.find(7);
const typed: Equal<typeof row, Row> = true;
assert.ok(typed);
assert.deepEqual(row, { id: 7, by: 'pg', attempt: 2 });
assert.equal(repo.calls, 2);
assert.ok(performance.now() - started >= 90, 'the first attempt ran until its timeout');

const saved = await repo.save('x');
const savedTyped: Equal<typeof saved, string> = true;
assert.ok(savedTyped);
assert.equal(saved, 'pg saved x');
assert.equal(repo.saves, 3);

// A second instance keeps its own `this`.
const other = new Repository('redis');
assert.equal((await other.find(1)).by, 'redis');

await assert.rejects(repo.hang(), (error: unknown) => error instanceof AttemptTimeoutError);
assert.ok(new Backoff() instanceof Backoff);

console.log('tc39 decorators: ok');
