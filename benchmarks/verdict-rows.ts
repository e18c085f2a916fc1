/**
 * The rows of the verdicts scenario, shared by verdicts.bench.ts (wall time) and
 * verdict-instructions.ts (callgrind): how each starts an execution whose verdict comes from its
 * bound, including the patched copies of dist/index.js that take the verdict apart.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { contextFloor, type Library, loadLibrary, stacklessError } from './support.js';

/** Long enough for the starts and a full collection to finish before the first verdict is due. */
export const BOUND = 100;
export const ROWS = {
  floor: 'context floor: new stackless Error per verdict',
  floorShared: 'context floor: one pre-made error for all verdicts',
  attemptTimeout: 'asyncbackoff attemptTimeout (maxTries 1)',
  deadline: 'asyncbackoff deadline',
  attemptTimeoutShared: 'asyncbackoff attemptTimeout, one pre-made error (patched dist copy)',
  bareVerdict: 'asyncbackoff attemptTimeout, verdict cut to its reject (patched dist copy)',
  bareVerdictShared: 'the same cut verdict, one pre-made error (patched dist copy)',
} as const;
/** The rows that measure a patched copy of the build. */
export const PATCHED: readonly RowKey[] = [
  'attemptTimeoutShared',
  'bareVerdict',
  'bareVerdictShared',
];
export type RowKey = keyof typeof ROWS;

const root = fileURLToPath(new URL('../', import.meta.url));

/** A source change of dist/index.js: what it replaces, and with what. */
interface Patch {
  readonly pattern: RegExp;
  readonly replacement: string;
}

/** Every attempt-timeout verdict rejects with one error, built on the first call only. */
const SHARE_ONE_ERROR: Patch = {
  pattern: /\nfunction attemptTimedOut\(timeout, attempt\) \{\n[\s\S]*?\n\}\n/,
  replacement:
    '\nvar sharedTimeoutError;\nfunction attemptTimedOut(timeout, attempt) {\n' +
    '  if (sharedTimeoutError === undefined) {\n' +
    '    const limit = Error.stackTraceLimit;\n    Error.stackTraceLimit = 0;\n' +
    '    sharedTimeoutError = new AttemptTimeoutError(timeout, attempt);\n' +
    '    Error.stackTraceLimit = limit;\n  }\n  return sharedTimeoutError;\n}\n',
};

/**
 * The attempt-timeout verdict cut down to what the caller cannot do without: the attempt marked
 * ended, the execution off the deadline queue, its promise rejected with the error. No scope, no
 * statistics, no release of what else the execution holds, no abort: wrong as an engine (fine for
 * these executions, which hold nothing else), right for telling the engine's path from the error.
 */
const BARE_VERDICT: Patch = {
  pattern: /\n {2}onAttemptTimer\(attempt, at\) \{\n[\s\S]*?\n {2}\}\n/,
  replacement:
    '\n  onAttemptTimer(attempt, at) {\n    attempt.finished = true;\n    this.phase = 6;\n' +
    '    this.core.deadlineQueue?.remove(this);\n' +
    '    this.reject(attemptTimedOut(this.core.policy.attemptTimeout, attempt.attempt));\n  }\n',
};

/**
 * A copy of dist/index.js with `patches` applied. Throws if a patched function is no longer
 * there as expected (the bench must not silently measure the unpatched code).
 */
async function patchedLibrary(patches: readonly Patch[]): Promise<Library> {
  let source = readFileSync(join(root, 'dist/index.js'), 'utf8');
  for (const { pattern, replacement } of patches) {
    if (!pattern.test(source))
      throw new Error(`dist/index.js no longer matches ${pattern}: update the patch`);
    source = source.replace(pattern, replacement);
  }
  const file = join(mkdtempSync(join(os.tmpdir(), 'asyncbackoff-verdicts-')), 'index.mjs');
  writeFileSync(file, source);
  return (await import(pathToFileURL(file).href)) as Library;
}

/** A function that starts one execution of `row`, whose attempt never settles. */
export async function makeStart(row: RowKey): Promise<() => Promise<unknown>> {
  const never = () => new Promise<never>(() => {});
  switch (row) {
    case 'floor':
      return contextFloor(never, BOUND);
    case 'floorShared': {
      const shared = stacklessError();
      return contextFloor(never, BOUND, () => shared);
    }
    case 'attemptTimeout': {
      const backoff = new (await loadLibrary()).Backoff({ attemptTimeout: BOUND, maxTries: 1 });
      return () => backoff.execute(never);
    }
    case 'deadline': {
      const backoff = new (await loadLibrary()).Backoff({ deadline: BOUND });
      return () => backoff.execute(never);
    }
    case 'attemptTimeoutShared':
    case 'bareVerdict':
    case 'bareVerdictShared': {
      const patches = {
        attemptTimeoutShared: [SHARE_ONE_ERROR],
        bareVerdict: [BARE_VERDICT],
        bareVerdictShared: [BARE_VERDICT, SHARE_ONE_ERROR],
      }[row];
      const { Backoff } = await patchedLibrary(patches);
      const backoff = new Backoff({ attemptTimeout: BOUND, maxTries: 1 });
      return () => backoff.execute(never);
    }
  }
}
