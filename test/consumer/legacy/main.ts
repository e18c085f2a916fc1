// Legacy decorators (experimentalDecorators + emitDecoratorMetadata, compiled to CommonJS), as
// NestJS applications use them.
import { strict as assert } from 'node:assert';
import { AttemptTimeoutError, asyncbackoff, asyncretry, currentAttempt } from 'asyncbackoff';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

class TransientError extends Error {
  override name = 'TransientError';
}

interface User {
  id: number;
  name: string;
  attempt: number;
}

class UsersService {
  calls = 0;
  saves = 0;

  constructor(private readonly prefix: string) {}

  @asyncbackoff(100, 1000)
  async findOne(id: number): Promise<User> {
    this.calls++;
    const { signal, attempt } = currentAttempt()!;
    if (attempt === 1) {
      await new Promise<never>((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    return { id, name: `${this.prefix}-${id}`, attempt };
  }

  @asyncretry(3, { exceptions: [TransientError], pause: 5 })
  async save(name: string): Promise<string> {
    this.saves++;
    if (this.saves < 3) throw new TransientError(`try again (${this.saves})`);
    return `${this.prefix} saved ${name}`;
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

async function main(): Promise<void> {
  const users = new UsersService('user');
  const user = await users.findOne(3);
  const typed: Equal<typeof user, User> = true;
  assert.ok(typed);
  assert.deepEqual(user, { id: 3, name: 'user-3', attempt: 2 });
  assert.equal(users.calls, 2);

  const saved = await users.save('ann');
  const savedTyped: Equal<typeof saved, string> = true;
  assert.ok(savedTyped);
  assert.equal(saved, 'user saved ann');
  assert.equal(users.saves, 3);

  const admins = new UsersService('admin');
  assert.equal((await admins.findOne(1)).name, 'admin-1');

  await assert.rejects(users.hang(), (error: unknown) => error instanceof AttemptTimeoutError);
}

main().then(
  () => console.log('legacy decorators: ok'),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
