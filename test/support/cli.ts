/**
 * Helpers of the CLI's unit tests (test/cli/): short `node -e` commands, and a socket through
 * which a command says it is ready (its signal handlers are installed, its grandchild runs), so
 * that no test sleeps to wait for a child process.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const NODE = process.execPath;

/** A temporary directory for the calling test file, removed after it. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'asyncbackoff-clitest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `node -e <script> [args...]` as a command line. */
export function node(script: string, ...args: string[]): string[] {
  return [NODE, '-e', script, ...args];
}

/**
 * A script that starts `script` in a grandchild, in its process group, and exits `code` as soon as
 * the grandchild writes to its stdout: a command that leaves a process running.
 */
export function leaving(code: number, script: string): string {
  return `const g = require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(script)}],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    g.stdout.once('data', () => process.exit(${code}));`;
}

/** A place a command reports to: `report(text)` in its script sends `text`. */
export interface Mailbox {
  /** A statement for the command's script that sends `text` (an expression) to {@link next}. */
  report(text: string): string;
  /** The next report received. */
  next(): Promise<string>;
  close(): Promise<void>;
}

let sockets = 0;

/** A Unix socket (a named pipe on Windows) that commands connect to and send one report. */
export async function mailbox(dir: string): Promise<Mailbox> {
  const name = `mb-${process.pid}-${++sockets}`;
  const path =
    process.platform === 'win32' ? `\\\\.\\pipe\\asyncbackoff-${name}` : join(dir, `${name}.sock`);
  const received: string[] = [];
  const waiting: ((text: string) => void)[] = [];
  const server: Server = createServer((socket) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => {
      const resolve = waiting.shift();
      if (resolve === undefined) received.push(text);
      else resolve(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    report: (text) => `require('net').connect(${JSON.stringify(path)}).end(String(${text}));`,
    next: () => {
      const text = received.shift();
      return text === undefined
        ? new Promise((resolve) => waiting.push(resolve))
        : Promise.resolve(text);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Whether `pid` runs. A zombie counts as dead: an orphan re-parented to a PID 1 that does not reap
 * (as in many containers) stays one, but it no longer runs.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): kill() succeeded
  }
}
