/**
 * The server's stop, for work a request leaves running after its response (a large campaign's
 * report recount): `signal` is aborted when the server stops, so such work stops at its next
 * step; `keep` hands it to the shutdown, which waits for it before the database closes.
 */
export interface Stopping {
  signal: AbortSignal
  keep(work: Promise<unknown>): void
}

/** A {@link Stopping} and the shutdown's side: `stop()` aborts, then waits for the work kept. */
export function stopping(): Stopping & { stop(): Promise<void> } {
  const controller = new AbortController()
  const running = new Set<Promise<unknown>>()
  return {
    signal: controller.signal,
    keep(work) {
      running.add(work)
      work.then(
        () => running.delete(work),
        () => running.delete(work),
      )
    },
    async stop() {
      controller.abort()
      await Promise.allSettled([...running])
    },
  }
}
