/**
 * Runs an account's outbox dispatcher in the background: drains whenever items are due, then polls.
 * Any number of workers (processes) may run for one account; the database keeps them apart.
 */
import type { TrafficCounter } from '../analytics/traffic-counter.js'
import type { Metrics } from '../metrics.js'
import { type DispatcherOptions, drainOutbox } from './outbox.js'

/** Starts draining; `stop()` waits for the drain in progress. */
export function startOutboxWorker(
  options: DispatcherOptions & { pollMs: number; metrics?: Metrics; traffic?: TrafficCounter },
) {
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> = Promise.resolve()

  const tick = () => {
    running = (async () => {
      try {
        const summary = await drainOutbox(options)
        for (const result of ['sent', 'skipped', 'failed', 'retried', 'unknown'] as const)
          options.metrics?.sends(result, summary[result])
        options.traffic?.add(options.appid, 'send_sent', summary.sent)
        options.traffic?.add(options.appid, 'send_failed', summary.failed + summary.unknown)
        if (
          summary.sent + summary.failed + summary.skipped + summary.retried + summary.unknown >
          0
        ) {
          options.logger.info('outbox drained', { appid: options.appid, ...summary })
        }
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
