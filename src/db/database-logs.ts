/**
 * What the database does, told to the operator. Every statement's run time goes to a histogram
 * (/metrics, `quanzi_db_statement_duration_seconds`), and each one slower than
 * DATABASE_SLOW_STATEMENT_MS is logged as a warning with its SQL text — placeholders, never the
 * values bound to them. On PGlite a statement runs on the server's one thread, so a slow one holds
 * every push meanwhile (bench/README.md, session 30: a campaign's report that took 5 s per view);
 * this is how an operator finds which. Timed by Kysely's `log` hook around the driver's execution:
 * the wait for a pool's connection (or PGlite's one) is not in it. And on PostgreSQL, an error on
 * an idle pooled connection (the server closed it) is logged instead of passing unseen.
 */
import type { LogEvent } from 'kysely'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'

/** The statement text a log line carries at most (characters). */
const STATEMENT_CHARS = 500

/**
 * The hooks `openDatabase` takes. `metrics` is read at each statement: the Node entry opens the
 * database before its metrics exist.
 */
export function databaseLogs(
  logger: Logger,
  /** Warn from this many milliseconds on; 0 = never. */
  slowMs: number,
  metrics?: () => Metrics,
): { onStatement: (event: LogEvent) => void; onIdleError: (error: Error) => void } {
  return {
    onStatement(event) {
      const ms = event.queryDurationMillis
      metrics?.().statement(ms / 1000)
      if (slowMs > 0 && ms > slowMs)
        logger.warn('slow statement', {
          code: 'SLOW_STATEMENT',
          ms: Math.round(ms),
          failed: event.level === 'error',
          statement: oneLine(event.query.sql),
        })
    },
    onIdleError(error) {
      logger.warn('database connection lost while idle; the next statement opens another', {
        code: 'DB_IDLE_CONNECTION_LOST',
        error,
      })
    },
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > STATEMENT_CHARS ? `${line.slice(0, STATEMENT_CHARS)}…` : line
}
