/**
 * Coalescing of concurrent calls into one statement: the reply store (`complete`) and the push
 * claim (`receive`) of a busy process each run many items per round trip, and an idle process
 * still runs each call at once.
 */

/** Makes a value once per scope (Workers: `scopes.local`; Node: once for the app). */
export type Local = <V>(make: () => V) => V

/**
 * Coalesces calls while one is in flight: the first call runs at once, the calls that arrive while
 * it runs go together in the next run. Each caller gets its own item's result; when a run of
 * several fails, each item is run again alone, so only the bad one fails its caller.
 * @example const store = batcher((rows: Row[]) => insertAll(db, rows)); await store(row)
 */
export function batcher<T, R>(run: (items: T[]) => Promise<R[]>): (item: T) => Promise<R> {
  let queue: { item: T; resolve(r: R): void; reject(e: unknown): void }[] = []
  let running = false
  const next = async () => {
    running = true
    while (queue.length > 0) {
      const batch = queue
      queue = []
      try {
        const results = await run(batch.map((q) => q.item))
        for (const [i, q] of batch.entries()) q.resolve(results[i]!)
      } catch (error) {
        if (batch.length === 1) batch[0]!.reject(error)
        // One bad item must not fail the others: each goes again on its own.
        else
          await Promise.all(batch.map((q) => run([q.item]).then((r) => q.resolve(r[0]!), q.reject)))
      }
    }
    running = false
  }
  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject })
      if (!running) void next()
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
): (item: T) => Promise<R> {
  const make = () => batcher(run)
  const shared = local ? undefined : make()
  return (item) => (shared ?? local!(make))(item)
}
