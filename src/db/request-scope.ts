/**
 * Database access per request, for Cloudflare Workers. A Worker may not use an I/O object (a
 * socket, hence a `pg` connection) from a request other than the one that created it: a pool kept
 * per isolate answers the first request and hangs every later one. Here one Kysely instance is
 * built once per isolate (with the app, router and keys), and each request or scheduled invocation
 * runs inside a scope ({@link DatabaseScopes.run}) that owns a small `pg` pool, opened on its
 * first query and ended once the work and everything it handed to `waitUntil` has settled.
 * Through Hyperdrive, which pools the real connections, opening one is cheap.
 *
 * Statements are not prepared here (src/db/prepared-statements.ts is Node's, postgresDatabase): a
 * scope's connection lives for one request, which seldom runs a text twice, so a per-connection
 * statement cache would have nothing to reuse.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { Kysely, PostgresDialect } from 'kysely'
import type pg from 'pg'
import { acquire } from './pool-busy-error.js'
import { DEFAULT_CONNECTION_TIMEOUT_MS, postgresPool } from './postgres.js'
import type { Database } from './schema.js'

/** Keeps work alive after the response (Workers' `ctx.waitUntil`). */
export type WaitUntil = (work: Promise<unknown>) => void

interface Scope {
  url: string
  pool?: pg.Pool
  /** Work handed to `waitUntil` inside the scope: the pool ends after it. */
  pending: Promise<unknown>[]
  locals: Map<object, unknown>
}

/** The per-isolate database whose connections belong to the current scope. */
export interface DatabaseScopes {
  /** Use it anywhere inside {@link run}; outside one, a query throws. */
  db: Kysely<Database>
  /**
   * Runs `work` in a scope with its own pool on `url`; `keepAlive` (the invocation's
   * `ctx.waitUntil`) receives the pool's closing, after `work` and what it passed to the
   * `waitUntil` it is given have settled.
   */
  run<T>(url: string, work: (waitUntil: WaitUntil) => Promise<T>, keepAlive: WaitUntil): Promise<T>
  /** A value made once per scope (e.g. API clients whose single-flight promises hold I/O). */
  local<V>(make: () => V): V
}

/** Connections one request may open (Workers allow six simultaneous; the app needs a few). */
const PER_SCOPE = 4

/** Builds the scoped database (once per isolate). */
export function databaseScopes(o: { max?: number } = {}): DatabaseScopes {
  const storage = new AsyncLocalStorage<Scope>()
  const current = () => {
    const scope = storage.getStore()
    if (!scope)
      throw new Error('database used outside a request scope (wrap the work in scopes.run)')
    return scope
  }
  const pool = {
    connect: () => {
      const scope = current()
      scope.pool ??= postgresPool(scope.url, { max: o.max ?? PER_SCOPE })
      return acquire<pg.PoolClient>(scope.pool, DEFAULT_CONNECTION_TIMEOUT_MS)
    },
    // Each scope ends its own pool.
    end: async () => {},
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })

  async function close(scope: Scope) {
    // Background work may add more background work: wait until none is left.
    while (scope.pending.length > 0) await Promise.allSettled(scope.pending.splice(0))
    await scope.pool?.end()
  }

  return {
    db,
    async run(url, work, keepAlive) {
      const scope: Scope = { url, pending: [], locals: new Map() }
      const waitUntil: WaitUntil = (p) => {
        scope.pending.push(p)
        keepAlive(p)
      }
      try {
        return await storage.run(scope, () => work(waitUntil))
      } finally {
        keepAlive(close(scope).catch(() => {}))
      }
    },
    local(make) {
      const { locals } = current()
      if (!locals.has(make)) locals.set(make, make())
      return locals.get(make) as ReturnType<typeof make>
    },
  }
}
