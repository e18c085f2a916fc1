/**
 * One process of the advisory-lock scenario (postgres-lock.test.ts), through the README recipe:
 * `count` read-modify-write increments of a counter row under `withAdvisoryLock(name)`, each
 * section reported on stdout as a JSON line with its start and end on the machine's monotonic
 * clock. With `hold`, it takes the lock once, says so, and never lets go (until it is killed).
 */
import { pool, withAdvisoryLock } from '../recipes/advisory-lock.js';

interface Config {
  name: string;
  table: string;
  count: number;
  hold?: boolean;
}

const config = JSON.parse(process.argv[2]!) as Config;
const say = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

if (config.hold) {
  await withAdvisoryLock(config.name, async () => {
    say({ held: true });
    await new Promise(() => {}); // inside the section until SIGKILL
  });
} else {
  let failures = 0;
  for (let i = 0; i < config.count; i++) {
    const asked = process.hrtime.bigint();
    try {
      await withAdvisoryLock(config.name, async () => {
        const start = process.hrtime.bigint();
        const { rows } = await pool.query<{ v: number }>(
          `SELECT v FROM ${config.table} WHERE id = 1`,
        );
        await new Promise((resolve) => setImmediate(resolve)); // widen the race window a little
        await pool.query(`UPDATE ${config.table} SET v = $1 WHERE id = 1`, [rows[0]!.v + 1]);
        const end = process.hrtime.bigint();
        say({ i, start: String(start), end: String(end), wait: Number(start - asked) / 1e6 });
      });
    } catch (error) {
      failures++;
      say({ i, error: (error as Error).name, message: (error as Error).message });
    }
  }
  say({ done: true, failures });
  await pool.end();
}
