/** A Kysely instance on PostgreSQL through `pg`, int8 parsed as a number like PGlite does. */
import { Kysely, type KyselyConfig, PostgresDialect } from 'kysely'
import pg from 'pg'
import { busyAware } from './pool-busy-error.js'
import { DEFAULT_POOL_MAX } from './pool-size.js'
import { DEFAULT_STATEMENT_CACHE, preparedStatements } from './prepared-statements.js'
import type { Database } from './schema.js'

const INT8_OID = 20
const DATE_OID = 1082

/** int8 as number (as PGlite returns it) and `date` as its `YYYY-MM-DD` text. PGlite still returns
 * `date` as a Date: queries that read a date cast it (`day::text`). */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value)
    if (oid === DATE_OID && format !== 'binary') return (value: string) => value
    return pg.types.getTypeParser(oid, format as 'text')
  },
} as pg.CustomTypesConfig

/** Options for {@link postgresDatabase}. */
export interface PostgresOptions {
  /** Pool size (default `DEFAULT_POOL_MAX`). */
  max?: number
  /** Put tables in this schema (tests use one schema per suite). */
  schema?: string
  /** Kysely's query log (bench/analytics.ts with BENCH_PROFILE=1 times each statement). */
  log?: KyselyConfig['log']
  /**
   * Statements each connection keeps prepared (DATABASE_STATEMENT_CACHE, default 100; 0 = none:
   * every statement unnamed, e.g. behind PgBouncer in transaction mode). See prepared-statements.ts.
   */
  statementCache?: number
  /**
   * How long a statement waits for a connection — a new one to connect, or one of a full pool to
   * come free (default {@link DEFAULT_CONNECTION_TIMEOUT_MS}). A full pool's wait past it throws
   * `PoolBusyError` (503 with Retry-After, pool-busy-error.ts).
   */
  connectionTimeoutMs?: number
  /**
   * Told of an error on an idle connection (the server closed it), which the pool has dropped;
   * without it such errors pass unseen.
   */
  onIdleError?: (error: Error) => void
}

/** A host that drops packets fails in 5 s (start-up names it; /healthz answers 503). */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000

/** A `pg` pool with the house's type parsers (one per {@link postgresDatabase}; one per request on Workers). */
export function postgresPool(
  url: string,
  options: Pick<PostgresOptions, 'max' | 'schema' | 'connectionTimeoutMs' | 'onIdleError'> = {},
) {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? DEFAULT_POOL_MAX,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    types,
    options: options.schema ? `-c search_path=${options.schema}` : undefined,
  })
  // An idle connection the server closes (a restart, a failover, idle_session_timeout, a proxy's
  // timeout) is emitted by the pool as 'error'; with no listener that is an uncaught exception —
  // the whole process would crash on a routine database restart. The pool has already dropped the
  // connection and the next statement opens a new one; a statement that then fails fails (and is
  // logged and counted) where it runs. The owner is told (the Node entry logs a warning).
  const onIdleError = options.onIdleError ?? (() => {})
  pool.on('error', (error) => onIdleError(error))
  return pool
}

/** Opens a pooled PostgreSQL connection. Call `destroy()` to close the pool. */
export function postgresDatabase(url: string, options: PostgresOptions = {}): Kysely<Database> {
  const pool = postgresPool(url, options)
  const prepared = preparedStatements(pool, options.statementCache ?? DEFAULT_STATEMENT_CACHE)
  const timeoutMs = options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: busyAware(prepared, timeoutMs) }),
    log: options.log,
  })
  pools.set(db, pool)
  return db
}

/** Connection counts of a pool. */
export interface PoolCounts {
  total: number
  idle: number
  waiting: number
}

const pools = new WeakMap<Kysely<Database>, pg.Pool>()

/** The pool counts of a database opened by {@link postgresDatabase} (undefined for others). */
export function poolCounts(db: Kysely<Database>): PoolCounts | undefined {
  const pool = pools.get(db)
  return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }
}
