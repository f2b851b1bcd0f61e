/**
 * Coalescing of concurrent calls into one statement: the reply store (`complete`) and the push
 * claim (`receive`) of a busy process each run many items per round trip, and an idle process
 * still runs each call at once.
 */

/** Makes a value once per scope (Workers: `scopes.local`; Node: once for the app). */
export type Local = <V>(make: () => V) => V

/**
 * Waits until the I/O already received has been handled (Node: `setImmediate`, after the poll
 * phase): requests whose bytes are in make their calls first and join the run. A statement on
 * PGlite runs on the event loop's thread, so nothing arrives while it is in flight; this is what
 * batches there. Costs a few µs when idle. Elsewhere (Workers, where a batch is one request's own
 * calls anyway) nothing to wait for.
 */
const gather: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise<void>((resolve) => setImmediate(resolve))
    : () => Promise.resolve()

/** How many runs a {@link batcher} keeps in flight, and how big one may be. */
export interface BatcherOptions {
  /**
   * Runs in flight at once (default 1). More than one where a run can wait on a lock: a run stuck
   * behind one row then holds up only its own items, not every later call.
   */
  lanes?: number
  /** Most items in one run (default unbounded): bounds what one statement locks and holds. */
  max?: number
}

/**
 * Coalesces calls: a run starts once the I/O already received has been handled, with every call
 * made by then (up to `max`), and the calls that arrive while runs are in flight go together in the
 * next (up to `lanes` in flight). Each caller gets its own item's result; when a run of several
 * fails, each item is run again alone, so only the bad one fails its caller.
 * @example const store = batcher((rows: Row[]) => insertAll(db, rows)); await store(row)
 */
export function batcher<T, R>(
  run: (items: T[]) => Promise<R[]>,
  { lanes = 1, max = Number.POSITIVE_INFINITY }: BatcherOptions = {},
): (item: T) => Promise<R> {
  const queue: { item: T; resolve(r: R): void; reject(e: unknown): void }[] = []
  let running = 0
  const lane = async () => {
    running++
    try {
      for (;;) {
        await gather()
        if (queue.length === 0) break
        const batch = queue.splice(0, max)
        try {
          const results = await run(batch.map((q) => q.item))
          for (const [i, q] of batch.entries()) q.resolve(results[i]!)
        } catch (error) {
          if (batch.length === 1) batch[0]!.reject(error)
          // One bad item must not fail the others: each goes again on its own.
          else
            await Promise.all(
              batch.map((q) => run([q.item]).then((r) => q.resolve(r[0]!), q.reject)),
            )
        }
      }
    } finally {
      running--
    }
  }
  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject })
      if (running < lanes) void lane()
    })
}

/**
 * A {@link batcher} per scope: with `local` (Workers), each request scope gets its own, because a
 * batch runs inside the scope of the caller that started it and a Worker may not await I/O another
 * request started — items of different requests must never share a batch there. Without `local`,
 * one batcher for every caller.
 */
export function scopedBatcher<T, R>(
  run: (items: T[]) => Promise<R[]>,
  local?: Local,
  options?: BatcherOptions,
): (item: T) => Promise<R> {
  const make = () => batcher(run, options)
  const shared = local ? undefined : make()
  return (item) => (shared ?? local!(make))(item)
}
