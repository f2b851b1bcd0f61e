/**
 * Runs an account's outbox dispatcher: in the background on Node (drains whenever items are due,
 * then polls), or for a bounded time from a Workers cron trigger ({@link drainOutboxWithin}). Any
 * number of workers (processes, invocations) may run for one account; the database keeps them
 * apart.
 */
import type { TrafficCounter } from '../analytics/traffic-counter.js'
import type { Metrics } from '../metrics.js'
import { type DispatcherOptions, type DrainSummary, drainOutbox } from './outbox.js'

/** Where a worker reports its drains. */
type Reporting = { metrics?: Metrics; traffic?: TrafficCounter }

const RESULTS = ['sent', 'skipped', 'failed', 'retried', 'unknown', 'cancelled'] as const

/** Counts one drain in the metrics and traffic counts, and logs it when it did something. */
function reportDrain(options: DispatcherOptions & Reporting, summary: DrainSummary): void {
  for (const result of RESULTS) options.metrics?.sends(result, summary[result])
  options.traffic?.add(options.appid, 'send_sent', summary.sent)
  options.traffic?.add(options.appid, 'send_failed', summary.failed + summary.unknown)
  if (RESULTS.some((r) => summary[r] > 0))
    options.logger.info('outbox drained', { appid: options.appid, ...summary })
}

/** Starts draining; `stop()` waits for the drain in progress. */
export function startOutboxWorker(options: DispatcherOptions & Reporting & { pollMs: number }) {
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> = Promise.resolve()

  const tick = () => {
    running = (async () => {
      try {
        reportDrain(options, await drainOutbox(options))
      } catch (error) {
        options.logger.error('outbox drain failed', { appid: options.appid, error })
      }
      if (!stopped) timer = setTimeout(tick, options.pollMs)
    })()
  }
  tick()
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}

/** What a bounded drain did: the counts, the claims it made, and whether it stopped for time. */
export interface BoundedDrain extends DrainSummary {
  batches: number
  /** True when the budget ran out while items were still being claimed (the next tick goes on). */
  outOfTime: boolean
}

/**
 * Drains one claim (`batchSize` items) at a time until nothing is due, the API is paused, or
 * `budgetMs` has passed on `clock` — whichever comes first — so a Workers invocation stays within
 * its limits and leaves the rest to the next trigger. A batch already started is finished (its
 * items' results are stored), so the budget is exceeded by at most one batch. Never throws: a
 * failed drain is logged and ends the loop.
 */
export async function drainOutboxWithin(
  options: DispatcherOptions & Reporting & { budgetMs: number },
): Promise<BoundedDrain> {
  const total: BoundedDrain = {
    sent: 0,
    skipped: 0,
    failed: 0,
    retried: 0,
    unknown: 0,
    cancelled: 0,
    paused: false,
    batches: 0,
    outOfTime: false,
  }
  const end = options.clock.now().getTime() + options.budgetMs
  try {
    for (;;) {
      if (options.clock.now().getTime() >= end) {
        total.outOfTime = true
        break
      }
      const summary = await drainOutbox({ ...options, maxBatches: 1 })
      for (const result of RESULTS) total[result] += summary[result]
      total.paused ||= summary.paused
      if (!RESULTS.some((r) => summary[r] > 0) || summary.paused) break
      total.batches++
    }
  } catch (error) {
    options.logger.error('outbox drain failed', { appid: options.appid, error })
  }
  reportDrain(options, total)
  return total
}
