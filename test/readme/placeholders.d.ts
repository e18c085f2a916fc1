// Placeholders that README.md's examples use without defining them. A global script (no
// top-level import/export), so every module in blocks/ sees these names.
type Backoff = import('asyncbackoff').Backoff;
type PolicyDecision = import('asyncbackoff').PolicyDecision;

// Intro, quick starts
interface User {
  id: string;
  name: string;
}
declare const userId: string;
declare const userIds: string[];
declare const redis: ReturnType<typeof import('redis').createClient>;
declare class FetchError extends Error {}
declare const api: {
  profile(id: string): Promise<User>;
  task(id: string): Promise<{ status: 'run' | 'done'; id: string }>;
};

// Statistics, budgets
declare const metrics: { gauge(name: string, value: number | (() => number)): void };

// Delay strategies
declare class ServiceUnavailable extends Error {}

// Polling
interface TaskData {
  totalStatus: 'run' | 'success' | 'failed';
}
declare function taskStatus(taskId: string): Promise<TaskData>;
declare const taskId: string;
interface Resp {
  ret_code: number;
  [key: string]: unknown;
}
declare class BaseApi {
  sendHttp(request: { action: string }): Promise<Resp>;
}

// Policy functions, hooks
declare class Client {
  _connect(): Promise<void>;
  _sendFailureLog(error: Error, fails: number): Promise<void>;
}
declare class ConnectionRefused extends Error {}
declare const log: {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
};

// Retrying a block of code
declare class LockBusy extends Error {}
interface Lock {
  release(): Promise<void>;
}
declare const locks: { acquire(name: string, options: { signal: AbortSignal }): Promise<Lock> };

// Batches
declare function userIdsFromCursor(): AsyncGenerator<string>;
declare const shutdown: AbortController;

// Pushback, fetch
declare class HttpError extends Error {
  response: Response;
}
declare const req: { signal: AbortSignal };

// The attempt context and its cost
declare class ConnectionError extends Error {}
declare const cache: { get(key: string): Promise<string | undefined> };

// Cluster locks
declare const withRedisLock: typeof import('../integration/recipes/redis-lock.js').withRedisLock;
declare function buildReport(options: { signal: AbortSignal }): Promise<string>;
declare const reports: {
  save(report: string, options: { fencingToken: number; signal: AbortSignal }): Promise<void>;
};
