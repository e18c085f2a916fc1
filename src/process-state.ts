/**
 * State that must be one per process, not one per copy of the package.
 *
 * The ESM build, the CJS build and the CLI's bundle are separate copies of this code, and a
 * dependency may bring another version. An attempt started by one copy must be visible to
 * `currentAttempt()` in another, and a nested execution must inherit its bounds, so the
 * AsyncLocalStorage that carries attempts lives on `globalThis` under a versioned `Symbol.for`
 * key (as the error brands do). The version names the shape of what is stored: copies that agree
 * on it share the store; a future incompatible shape takes a new key.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AttemptContext, AttemptLike } from './attempt.js';

const KEY = Symbol.for('asyncbackoff.attemptStorage.v1');

/** What the store holds: the current attempt, or `undefined` once the engine has left one. */
type Store = (AttemptContext & AttemptLike) | undefined;

type Shared = typeof globalThis & { [KEY]?: AsyncLocalStorage<Store> };

/** The attempt storage of this process, created by whichever copy loads first. */
const shared = globalThis as Shared;
shared[KEY] ??= new AsyncLocalStorage<Store>();
export const attemptStorage: AsyncLocalStorage<Store> = shared[KEY];
