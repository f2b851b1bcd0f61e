/**
 * How much work one invocation may still start. Long jobs work in chunks and ask the budget before
 * each chunk after their first, so an invocation that runs out stops between chunks, cleanly, and
 * the next one resumes where it stopped. Node runs jobs to completion ({@link UNLIMITED}); a
 * Workers scheduled invocation gives its jobs a wall-clock deadline ({@link wallClockBudget}).
 */
import type { Clock } from './clock.js'

/** What is left of an invocation's allowance. */
export interface Budget {
  /** Whether another chunk may start. Every run does its first chunk whatever this says. */
  left(): boolean
}

/** No limit: the work runs to completion (Node, manual runs). */
export const UNLIMITED: Budget = { left: () => true }

/**
 * A wall-clock deadline `ms` after now. On Workers the clock moves on with each I/O (every chunk
 * queries the database), and CPU time never exceeds wall time, so a deadline below the CPU limit
 * (`[limits] cpu_ms`) also bounds the CPU an invocation spends on its jobs.
 * @example runDue(jobs, deps, { ...o, budget: wallClockBudget(systemClock, 25_000) })
 */
export function wallClockBudget(clock: Clock, ms: number): Budget {
  const deadline = clock.now().getTime() + ms
  return { left: () => clock.now().getTime() < deadline }
}

/** A budget of `n` more chunks (tests: a run that stops part-way, deterministically). */
export function chunkBudget(n: number): Budget {
  let remaining = n
  return { left: () => remaining-- > 0 }
}

/**
 * A view of `budget` that remembers whether it ever said no: work built of several loops (each
 * asking it between batches) learns afterwards whether it stopped early and has more to do.
 * @example const b = watched(o.budget); await stampLots(db, { …, budget: b }); if (b.spent) …
 */
export function watched(budget: Budget | undefined): Budget & { readonly spent: boolean } {
  let spent = false
  return {
    left() {
      if (spent) return false
      spent = budget ? !budget.left() : false
      return !spent
    },
    get spent() {
      return spent
    },
  }
}
