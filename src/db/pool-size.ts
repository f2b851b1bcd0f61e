/**
 * How many PostgreSQL connections a Node process opens (README → Running on PostgreSQL → Pool
 * size). No driver here: the configuration reads these without loading `pg`.
 */

/** Claim statements in flight at once on PostgreSQL (`databaseMemberStore`'s lanes). */
export const CLAIM_LANES = 4

/**
 * Connections a pool opens at most unless DATABASE_POOL_MAX says otherwise: pg's own default. On a
 * database server with few cores fewer do more.
 */
export const DEFAULT_POOL_MAX = 10

/**
 * The least DATABASE_POOL_MAX may be: the claim lanes. A pool that small still serves every other
 * statement, because pg's pool hands a freed connection to the longest waiter and a claim holds
 * one for one statement only; no transaction in the app waits on a second connection.
 */
export const MIN_POOL_MAX = CLAIM_LANES
