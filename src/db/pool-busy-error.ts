/**
 * A statement that could not get a connection in time: every connection of the pool was busy for
 * the whole connection timeout (a rush — a flash sale's first seconds — or slow statements holding
 * them). The statement was never sent; the client asks again (what the request had done before
 * stands: an order's client key makes its retry safe), and the app answers 503 with Retry-After
 * (src/app.ts), never 500.
 *
 * Only that case, matched exactly: the error `pg-pool` (3.x, `Pool.connect`) rejects a checkout with
 * when it found the pool full and got no connection within `connectionTimeoutMillis` — a plain
 * `Error` whose message is {@link POOL_ACQUIRE_TIMEOUT}, from the pool's `connect()` itself, never
 * from a statement. A connection the server did not accept in time while the pool had room
 * ("Connection terminated due to connection timeout": the database is unreachable, a 500), a
 * refused connection or any error of a statement stays what it was.
 */
import type { PostgresPool, PostgresPoolClient } from 'kysely'

/** What `pg-pool` rejects a checkout of a full pool with after `connectionTimeoutMillis`. */
export const POOL_ACQUIRE_TIMEOUT = 'timeout exceeded when trying to connect'

/** The Retry-After the app answers a {@link PoolBusyError} with. */
export const BUSY_RETRY_AFTER_SECONDS = 2

/** Every connection stayed busy while the statement waited `waitedMs` for one. */
export class PoolBusyError extends Error {
  override readonly name = 'PoolBusyError'
  constructor(
    /** How long the checkout waited (the pool's connection timeout). */
    readonly waitedMs: number,
    options?: { cause?: unknown },
  ) {
    super(`no database connection came free within ${waitedMs} ms`, options)
  }
}

/** True for exactly the rejection of a pool checkout that timed out in the queue. */
export function isPoolAcquireTimeout(error: unknown): boolean {
  return (
    error instanceof Error &&
    Object.getPrototypeOf(error) === Error.prototype &&
    error.message === POOL_ACQUIRE_TIMEOUT &&
    (error as { code?: unknown }).code === undefined
  )
}

/**
 * A connection from `pool`, or a {@link PoolBusyError} when the checkout timed out in its queue.
 * @example connect: () => acquire(pool, 5_000)
 */
export async function acquire<C>(pool: { connect(): Promise<C> }, timeoutMs: number): Promise<C> {
  try {
    return await pool.connect()
  } catch (error) {
    if (isPoolAcquireTimeout(error)) throw new PoolBusyError(timeoutMs, { cause: error })
    throw error
  }
}

/**
 * The pool Kysely is given, whose checkouts throw {@link PoolBusyError} as {@link acquire} does.
 * @example new PostgresDialect({ pool: busyAware(prepared, 5_000) })
 */
export function busyAware(pool: PostgresPool, timeoutMs: number): PostgresPool {
  return {
    connect: (): Promise<PostgresPoolClient> => acquire(pool, timeoutMs),
    end: () => pool.end(),
  }
}
