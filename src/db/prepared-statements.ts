/**
 * Named prepared statements on a `pg` pool, for Kysely's PostgresDialect. Kysely and `pg` send
 * every statement unnamed, so PostgreSQL parses, analyses and plans it on every execution; for
 * the push path that is ~40 % of the database's work (pgbench `-M simple` against `-M prepared`,
 * bench/README.md). Here each connection keeps the statements it runs repeatedly prepared under a
 * name of its own, and sends only Bind/Execute for them.
 *
 * - **Bounded.** A text is prepared on its second use on a connection (one-off texts — an IN list
 *   of an unusual length, console queries, migrations — never are), and at most `size` texts stay
 *   prepared per connection, least recently used deallocated first (`DEALLOCATE`, queued before
 *   the next statement). The texts seen once are remembered in an equally bounded list.
 * - **Planned anew now and then.** PostgreSQL keeps the generic plan it settles on after a
 *   statement's fifth run as it made it, on the tables as they were, until something invalidates
 *   it (an ANALYZE, DDL). One made while a table was empty stays on it as the table grows: the
 *   batched reply store planned on a new install's empty `inbound_events` scanned the whole table
 *   on every batch (bench/README.md, session 38). So a text is prepared anew under a new name after
 *   {@link RENEW_AFTER_RUNS} runs by name (the old one deallocated): its plans are made again on
 *   the tables as they are — a Parse and a few custom plans every thousand runs.
 * - **Only parameterised statements**: a text without values (`begin`, `commit`, DDL, a
 *   multi-statement migration) keeps the simple protocol, as before.
 * - **DDL after prepare.** A prepared statement whose result type a DDL changed fails with
 *   "cached plan must not change result type" (0A000); one whose parameter's type was dropped
 *   (a domain, on a migration's way down) with XX000 "cache lookup failed for type"; one the
 *   server no longer has (`DISCARD ALL`, a pooler) with 26000. Each makes every connection of
 *   the pool drop its statements (`DEALLOCATE ALL` before its next statement), and the failed
 *   statement, outside a transaction, runs again unnamed: the caller sees its result. Inside a
 *   transaction, which the error has already aborted, the original error is passed on
 *   unchanged, as for any error.
 * - Names are `quanzi_<connection>_<n>`: a random tag per connection, then a number never reused,
 *   so a name cannot meet another text (no hash, no collision), not even across client connections
 *   that a transaction-mode pooler puts on one server connection (there 42P05 "already exists" and
 *   26000 are treated as stale too — but such poolers want DATABASE_STATEMENT_CACHE=0).
 * - **Freeing never fails a transaction.** Only names `pg` saw parsed are deallocated (a text whose
 *   Parse failed left nothing on the server), and the DEALLOCATEs wait until the connection is
 *   outside a transaction. A value that `pg` could not serialise (its Bind never sent) makes `pg`
 *   close the statement on the server: the text is forgotten here and in `pg` too.
 *
 * Off on Cloudflare Workers (src/db/request-scope.ts): each request opens its own connection
 * through Hyperdrive, which would see a text twice only rarely.
 */
import type { PostgresPool, PostgresPoolClient } from 'kysely'
import type pg from 'pg'

/** Statements kept prepared per connection unless configured (asyncpg's default cache size). */
export const DEFAULT_STATEMENT_CACHE = 100

/** Runs of a text under one name, after which it is prepared anew (see the header). */
export const RENEW_AFTER_RUNS = 1_000

/** The parts of a `pg` client used here beyond its typings (pg ~8.23, pinned in package.json). */
interface PgClient {
  query(config: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult>
  release(destroy?: boolean): void
  /** `I` idle, `T` in a transaction, `E` in a failed transaction (the last ReadyForQuery). */
  getTransactionStatus?(): string | null
  /** What `pg` believes the server has parsed, by name: it sends Parse only for other names. */
  connection?: { parsedStatements?: Record<string, string> }
}

/**
 * SQLSTATEs of a prepared statement gone bad: result type changed by DDL; no such statement; one
 * of that name already there (a pooler mixing client connections).
 */
const STALE = new Set(['0A000', '26000', '42P05'])

/**
 * True for the errors a re-prepare cures (0A000 is also "feature not supported" in general). Also
 * a statement whose parameter type was inferred as a type DDL dropped since (a domain, on a
 * migration's way down): its Bind fails with XX000 "cache lookup failed for type <oid>".
 */
function isStale(error: unknown): boolean {
  const e = error as { code?: string; routine?: string; message?: string }
  if (e?.code === 'XX000') return /^cache lookup failed for type \d+$/.test(e.message ?? '')
  if (!e || !STALE.has(e.code ?? '')) return false
  return e.code !== '0A000' || e.routine === 'RevalidateCachedQuery'
}

/** One connection's prepared statements and the texts it has seen once. */
class StatementCache {
  /** text → its name and runs under it, least recently used first. */
  readonly prepared = new Map<string, { name: string; runs: number }>()
  /** texts run once, oldest first. */
  readonly seen = new Set<string>()
  generation: number
  private counter = 0
  /** This connection's tag in statement names. */
  private readonly tag = Math.random().toString(36).slice(2, 8)
  /** Names to deallocate once the connection is outside a transaction. */
  private pending: string[] = []

  constructor(
    readonly client: PgClient,
    readonly size: number,
    readonly pool: { generation: number },
  ) {
    this.generation = pool.generation
  }

  async query(text: string, values: unknown[]): Promise<pg.QueryResult> {
    const { client } = this
    // A failed transaction refuses every statement but ROLLBACK: nothing to prepare or free.
    if (values.length === 0 || client.getTransactionStatus?.() === 'E')
      return client.query(text, values)
    if (this.generation !== this.pool.generation) this.forgetAll()
    this.flush()
    const name = this.nameFor(text)
    if (!name) return client.query(text, values)
    try {
      return await client.query({ name, text, values })
    } catch (error) {
      if (!(error as { severity?: string }).severity) {
        // Not the server's answer (a value `pg` could not serialise): `pg` closed the statement.
        this.prepared.delete(text)
        const parsed = client.connection?.parsedStatements
        if (parsed) delete parsed[name]
        throw error
      }
      if (!isStale(error)) throw error
      this.pool.generation++
      // Inside a transaction the error has aborted it: the caller sees it, as any other error.
      if (client.getTransactionStatus?.() !== 'I') throw error
      this.forgetAll()
      return client.query(text, values)
    }
  }

  /** The name to run `text` under, or undefined to run it unnamed (its first use). */
  private nameFor(text: string): string | undefined {
    const known = this.prepared.get(text)
    if (known) {
      this.prepared.delete(text)
      if (++known.runs <= RENEW_AFTER_RUNS) {
        this.prepared.set(text, known)
        return known.name
      }
      // Prepared anew: planned again on the tables as they are now.
      this.release(known.name)
      const name = this.newName()
      this.prepared.set(text, { name, runs: 1 })
      return name
    }
    if (!this.seen.delete(text)) {
      this.seen.add(text)
      if (this.seen.size > this.size) this.seen.delete(this.seen.values().next().value as string)
      return undefined
    }
    const name = this.newName()
    this.prepared.set(text, { name, runs: 1 })
    if (this.prepared.size > this.size) {
      const [oldest, old] = this.prepared.entries().next().value as [string, { name: string }]
      this.prepared.delete(oldest)
      this.release(old.name)
    }
    return name
  }

  /** A name never used on this connection. */
  private newName(): string {
    return `quanzi_${this.tag}_${++this.counter}`
  }

  /** Deallocates `name` (queued until outside a transaction). */
  private release(name: string) {
    const parsed = this.client.connection?.parsedStatements
    // A name whose Parse failed is not on the server: nothing to deallocate.
    if (parsed?.[name] === undefined) return
    delete parsed[name]
    this.pending.push(name)
    this.flush()
  }

  /** Drops every statement of this connection (after DDL or a server that lost them). */
  private forgetAll() {
    this.generation = this.pool.generation
    const parsed = this.client.connection?.parsedStatements
    if (parsed) for (const { name } of this.prepared.values()) delete parsed[name]
    this.prepared.clear()
    this.seen.clear()
    this.pending = []
    // Never fails, in a transaction or not; queued, it runs before the next statement.
    this.client.query('deallocate all').catch(() => {})
  }

  /** Sends the pending DEALLOCATEs once outside a transaction (a failure there would abort it). */
  private flush() {
    if (this.pending.length === 0 || this.client.getTransactionStatus?.() !== 'I') return
    const statement = this.pending.map((name) => `deallocate ${name}`).join('; ')
    this.pending = []
    this.client.query(statement).catch(() => {})
  }
}

/**
 * The pool Kysely's PostgresDialect is given: `pool`'s connections, each running its repeated
 * statements prepared (at most `size` of them). `size` 0 → `pool` itself, nothing prepared.
 * @example new PostgresDialect({ pool: preparedStatements(new pg.Pool(…), 100) })
 */
export function preparedStatements(pool: pg.Pool, size = DEFAULT_STATEMENT_CACHE): PostgresPool {
  if (size <= 0) return pool
  const shared = { generation: 0 }
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>()
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    const raw = client as unknown as PgClient
    const cache = new StatementCache(raw, size, shared)
    return {
      query: ((config: unknown, values?: unknown[]) =>
        typeof config === 'string' && Array.isArray(values)
          ? cache.query(config, values)
          : client.query(config as pg.QueryConfig)) as unknown as PostgresPoolClient['query'],
      // pg-pool gives the client a new `release` at every checkout: look it up each time.
      release: (destroy) => client.release(destroy),
    }
  }
  return {
    async connect() {
      const client = await pool.connect()
      let wrapped = clients.get(client)
      if (!wrapped) {
        wrapped = wrap(client)
        clients.set(client, wrapped)
      }
      return wrapped
    },
    end: () => pool.end(),
  }
}
