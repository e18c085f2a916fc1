/**
 * Nested executions whose bound is an enclosing attempt's.
 *
 * An execution started inside an attempt never runs past that attempt's remaining time. When its
 * own attempt timer comes due at the same instant as the enclosing bound (the common case: the
 * inner deadline was cut to the outer one), the timer that enforces the enclosing bound will cancel
 * the inner execution with the enclosing reason, exactly as if it had fired first. So the inner
 * one leaves its verdict to it (a "hand-off") instead of recording a timeout of its own. If the
 * enclosing attempt ends without an abort after all (its answer was read first, on a late event
 * loop), each child it holds is handed its verdict back (`resumeHandoff`).
 */
import type { AttemptChild, AttemptLike } from './attempt.js';

/**
 * Whether a timer still to run will end `attempt`, an enclosing attempt whose bound `at` has
 * reached, so that the nested execution `child` may leave its verdict to it. The bound may be the
 * attempt's own timeout, its execution's deadline, or inherited from further out: the walk goes up
 * to the attempt whose timer enforces it, and gives up if an attempt on the way has finished
 * (nothing will end it then). `child` is registered on every attempt on the way, so that whichever
 * of them ends without an abort hands the verdict back.
 */
export function leaveToEnclosing(attempt: AttemptLike, at: number, child: AttemptChild): boolean {
  const chain: AttemptLike[] = [];
  for (let current: AttemptLike | undefined = attempt; current !== undefined; ) {
    if (current.finished) return false;
    chain.push(current);
    if (current.owner.enforcesBound(current, at)) {
      for (const link of chain) link.handOff(child);
      return true;
    }
    current = current.owner.parent;
  }
  return false;
}
