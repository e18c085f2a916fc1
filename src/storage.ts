/**
 * The AsyncLocalStorage that carries the current attempt across awaits. In its own module so the
 * timer code can leave it: a timer shared by an instance must not carry the context of whichever
 * attempt happened to arm it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Attempt } from './context.js';

export const attemptStorage = new AsyncLocalStorage<Attempt>();
