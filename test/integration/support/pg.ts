/**
 * Shared by the PostgreSQL integration tests: the environment check, an admin connection that
 * survives restarts, the server controls of `.ci/services.sh`, and a TCP proxy that counts the
 * connections that reach the server.
 */
import { execFile } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const required = ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE'] as const;
/** The PG* variables that are missing; under CI their absence is an error, never a skip. */
export const missingPgEnv: string[] = required.filter((name) => !process.env[name]);
if (missingPgEnv.length > 0) {
  const message = `PostgreSQL integration tests need ${missingPgEnv.join(', ')}: run \`eval "$(.ci/services.sh start)"\` first`;
  if (process.env.CI) throw new Error(message);
  console.warn(`[skipped] ${message}`);
}

const run = promisify(execFile);
const services = fileURLToPath(new URL('../../../.ci/services.sh', import.meta.url));

/** `.ci/services.sh pg-stop | pg-start | pg-restart` for the server of this SERVICES_DIR. */
export async function server(command: 'pg-stop' | 'pg-start' | 'pg-restart'): Promise<void> {
  await run('bash', [services, command], { env: process.env, timeout: 60_000 });
}

/** Checks that `.ci/services.sh` controls the very server PGPORT points at. */
export async function checkServerControl(): Promise<void> {
  const { stdout } = await run('bash', [services, 'env'], { env: process.env });
  const port = /PGPORT=(\d+)/.exec(stdout)?.[1];
  if (port !== process.env.PGPORT)
    throw new Error(
      `.ci/services.sh controls the server on port ${port}, but PGPORT is ${process.env.PGPORT}: export the SERVICES_DIR the services were started with`,
    );
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A connection for the test's own bookkeeping (probes, fault injection). It reconnects after a
 * restart and never crashes the process on a terminated session.
 */
export class Admin {
  private client: pg.Client | undefined;

  async query<R extends pg.QueryResultRow = any>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    for (let tries = 0; ; tries++) {
      try {
        if (this.client === undefined) {
          const client = new pg.Client({ application_name: 'asyncbackoff-admin' });
          client.on('error', () => {
            if (this.client === client) this.client = undefined;
          });
          await client.connect();
          this.client = client;
        }
        return await this.client.query<R>(text, values);
      } catch (error) {
        this.client?.end().catch(() => {});
        this.client = undefined;
        if (tries >= 100) throw error;
        await sleep(50);
      }
    }
  }

  async end(): Promise<void> {
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }
}

/** Active statements whose text contains `tag` (other than the probe itself). */
export async function activeTagged(admin: Admin, tag: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE pid <> pg_backend_pid() AND state = 'active' AND position($1 in query) > 0`,
    [tag],
  );
  return rows[0]!.n;
}

/**
 * A TCP proxy in front of PostgreSQL that counts the connections made through it: each one is a
 * connection attempt that reached the server (or would have, had it been up).
 */
export class CountingProxy {
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    const target = { host: process.env.PGHOST!, port: Number(process.env.PGPORT) };
    this.server = createServer((client) => {
      this.connections++;
      const upstream = netConnect(target);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
