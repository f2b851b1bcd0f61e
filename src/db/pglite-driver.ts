/**
 * Kysely on PGlite: one connection, handed to its callers in turn, each statement one trip into
 * PGlite. Replaces kysely-pglite-dialect's driver for two reasons measured under the webhook bench
 * (bench/README.md, issue 20):
 *
 * - **The event loop keeps turning.** PGlite answers within microtasks (its WebAssembly runs
 *   synchronously; nothing waits on I/O), so a queue of statements runs in one unbroken chain and
 *   the event loop stalls for as long as all of them take. Node accepts one new connection per
 *   event-loop turn (libuv ≥ 1.45), so under 50 new connections the last waited seconds to be
 *   accepted: that was PGlite's p99 of seconds. Here the connection is handed over in a fresh
 *   turn (`setImmediate`), first come first served, so sockets, timers and accepts run between
 *   two callers' statements. A transaction keeps the connection from BEGIN to COMMIT.
 * - **One trip per statement.** PGlite's `query()` enters the database six times per statement
 *   (parse, describe, bind, describe, execute, sync) and merges its several hundred type parsers
 *   into a new object for every result. Here a statement is one pipelined
 *   parse/bind/describe/execute/sync; the parameter types a statement's text takes are asked once
 *   (parse + describe) and remembered, and rows are parsed with PGlite's own parsers and
 *   serializers, so values come back exactly as `query()` gives them.
 * - **Requests before background work.** A dialect made with `{ background: true }` (the jobs and
 *   the outbox workers: src/node.ts) shares the instance's one connection with the others, and
 *   waits while any of theirs waits (a request's, /healthz's, the traffic counts' …): the
 *   connection goes to those first, to background work when none waits — or once background work
 *   has waited {@link BACKGROUND_MAX_WAIT_MS} (once per that interval). First come, first served,
 *   a campaign's enqueue — a transaction of some 0.2 s per 1,000 members, one after the other —
 *   took every other turn, and
 *   with the server's thread saturated pushes queued behind it for seconds (a campaign to 30,000
 *   members: 531 of 6,000 pushes answered after 4.5 s, none after; bench/README.md, issue 20,
 *   session 33). A transaction still keeps the connection from BEGIN to COMMIT, whoever holds it,
 *   and a statement that has started runs to its end.
 *
 * The PGlite instance belongs to these drivers alone: nothing else may query it meanwhile.
 */
import type { PGlite } from '@electric-sql/pglite'
import { parse, protocol } from '@electric-sql/pglite'
import { EmscriptenBuiltinFilesystem } from '@electric-sql/pglite/basefs'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'

/**
 * A Kysely dialect over one PGlite instance (see the file's comment); `background`: its statements
 * wait while the other dialects' wait.
 */
export function pgliteDialect(pglite: PGlite, o: { background?: boolean } = {}): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new PgliteDriver(pglite, o.background ?? false),
    createIntrospector: (db: Kysely<unknown>) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  }
}

/** Statement texts whose parameter types are remembered; past this the memory starts afresh. */
const REMEMBERED_STATEMENTS = 1000

type Waiter = { grant: () => void; since: number }

/**
 * Once background work's oldest waiter has waited this long while requests keep the connection
 * busy, it goes next — at most one such turn per this interval (with k waiters, the last waits
 * some k intervals), so that background work gets a turn every second however saturated the
 * server, and requests the others. It always makes progress (the
 * outbox's sends and their lease renewals, a job's heartbeat), and never takes every turn: when
 * each waiter that had waited a second went next, a saturated server's background work — a
 * campaign's enqueue and report counts, the outbox — was always overdue and went before every
 * push (bench/README.md, issue 20, session 34: a campaign to 1,000,000 members on PGlite).
 */
export const BACKGROUND_MAX_WAIT_MS = 1000

/**
 * A PGlite instance's one connection — the turn to use it — and who waits for it: requests, then
 * background work. Each driver has its own connection object over the instance (Kysely wraps a
 * connection object with its driver's statement log: one object shared by two drivers logged
 * every statement twice); the parameter types asked are remembered here, for all of them.
 */
class PgliteLine {
  /** Parameter type OIDs by statement text. */
  readonly types = new Map<string, number[]>()
  readonly #requests: Waiter[] = []
  readonly #background: Waiter[] = []
  #busy = false
  /** When background work last went before waiting requests (it had waited its longest). */
  #overdueGranted = Number.NEGATIVE_INFINITY

  /** Always granted in a later event-loop turn (see the file's comment). */
  acquire(background: boolean): Promise<void> {
    return new Promise((grant) => {
      if (this.#busy)
        (background ? this.#background : this.#requests).push({ grant, since: performance.now() })
      else {
        this.#busy = true
        setImmediate(grant)
      }
    })
  }

  release() {
    const now = performance.now()
    const overdue = this.#background[0]
    let next: Waiter | undefined
    if (
      overdue &&
      now - overdue.since >= BACKGROUND_MAX_WAIT_MS &&
      now - this.#overdueGranted >= BACKGROUND_MAX_WAIT_MS
    ) {
      this.#overdueGranted = now
      next = this.#background.shift()
    } else next = this.#requests.shift() ?? this.#background.shift()
    if (next) setImmediate(next.grant)
    else this.#busy = false
  }
}

/** The line of each PGlite instance, shared by every dialect made over it. */
const lines = new WeakMap<PGlite, PgliteLine>()

class PgliteDriver implements Driver {
  readonly #line: PgliteLine
  readonly #connection: PgliteConnection

  constructor(
    readonly pglite: PGlite,
    readonly background: boolean,
  ) {
    let line = lines.get(pglite)
    if (!line) {
      line = new PgliteLine()
      lines.set(pglite, line)
    }
    this.#line = line
    this.#connection = new PgliteConnection(pglite, line.types)
  }

  async init() {
    await this.pglite.waitReady
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#line.acquire(this.background)
    return this.#connection
  }

  async releaseConnection() {
    this.#line.release()
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    const modes = [
      settings.isolationLevel && `isolation level ${settings.isolationLevel}`,
      settings.accessMode,
    ].filter(Boolean)
    await connection.executeQuery(
      CompiledQuery.raw(modes.length ? `start transaction ${modes.join(' ')}` : 'begin'),
    )
  }

  async commitTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
  }

  async destroy() {
    if (!this.pglite.closed) await this.pglite.close()
  }
}

const wire = protocol.serialize

class PgliteConnection implements DatabaseConnection {
  constructor(
    readonly pglite: PGlite,
    /** Parameter type OIDs by statement text, shared by the instance's connections. */
    readonly types: Map<string, number[]>,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const { sql, parameters } = query
    const types = await this.#parameterTypes(sql)
    const serializers = this.pglite.serializers
    const values = parameters.map((value, i) => {
      if (value === null || value === undefined) return null
      const serialize = serializers[types[i]!]
      return serialize ? serialize(value) : String(value)
    })
    const { messages } = await this.pglite.execProtocol(
      concat([
        // The types are not pinned in the Parse: PostgreSQL infers the same from the text, and
        // one remembered from before a schema change (a domain dropped and made again: the suites'
        // `public` made anew, a migration's way down) may name a type that no longer exists.
        wire.parse({ text: sql }),
        wire.bind({ values }),
        wire.describe({ type: 'P' }),
        wire.execute({}),
        wire.sync(),
      ]),
      { syncToFs: false },
    )
    this.#syncs ??= this.pglite.fs?.syncToFs !== EmscriptenBuiltinFilesystem.prototype.syncToFs
    if (this.#syncs && !this.pglite.isInTransaction()) await this.pglite.syncToFs()
    return this.#result<R>(messages)
  }

  /**
   * Whether a statement outside a transaction is followed by PGlite's `syncToFs()`: only when
   * the instance's file system has something to sync (IndexedDB's, a custom one). PGlite's
   * in-memory and Node file systems are Emscripten's own, which write through; their `syncToFs` is
   * `EmscriptenBuiltinFilesystem`'s empty one, and PGlite's around it (a mutex, its promises) cost
   * a fifth of a `select 1` (bench/README.md, session 43). Any other file system, or one of these
   * that overrides it in a later PGlite, is synced as before. Known at the first statement (the
   * file system is set once the instance is ready).
   */
  #syncs: boolean | undefined

  async *streamQuery<R>(query: CompiledQuery, chunkSize: number) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0)
      throw new Error('chunkSize must be a positive integer')
    const { rows } = await this.executeQuery<R>(query)
    for (let i = 0; i < rows.length; i += chunkSize) yield { rows: rows.slice(i, i + chunkSize) }
  }

  /**
   * The types PostgreSQL infers for the statement's parameters, to pick each value's serializer:
   * asked once per text. A domain's is given as its base type's (PostgreSQL infers a parameter
   * assigned to a domain column as the domain, which has no serializer of its own: a Date would
   * go as `String(date)`, an object as "[object Object]").
   */
  async #parameterTypes(sql: string): Promise<number[]> {
    const known = this.types.get(sql)
    if (known) return known
    const { messages } = await this.pglite.execProtocol(
      concat([wire.parse({ text: sql }), wire.describe({ type: 'S' }), wire.sync()]),
      { syncToFs: false },
    )
    const types = await this.#baseTypes(parse.parseDescribeStatementResults(messages))
    if (this.types.size >= REMEMBERED_STATEMENTS) this.types.clear()
    this.types.set(sql, types)
    return types
  }

  /** `types` with each domain replaced by its base type (a domain's domain by the last base). */
  async #baseTypes(types: number[]): Promise<number[]> {
    const serializers = this.pglite.serializers
    let resolved = types
    for (let depth = 0; depth < 8; depth++) {
      const unknown = [...new Set(resolved.filter((t) => !(t in serializers)))]
      if (unknown.length === 0) break
      const { rows } = await this.pglite.query<{ oid: number; base: number }>(
        `select oid::int as oid, typbasetype::int as base from pg_type
          where oid = any($1::oid[]) and typtype = 'd'`,
        [unknown],
      )
      if (rows.length === 0) break
      const base = new Map(rows.map((r) => [r.oid, r.base]))
      resolved = resolved.map((t) => base.get(t) ?? t)
    }
    return resolved
  }

  /** Rows as PGlite's `query()` makes them (its parsers by type OID), without its per-call copy. */
  #result<R>(messages: readonly { name: string }[]): QueryResult<R> {
    const parsers = this.pglite.parsers
    let fields: { name: string; dataTypeID: number }[] = []
    const rows: R[] = []
    let affected = 0
    for (const message of messages) {
      if (message.name === 'rowDescription')
        fields = (message as unknown as { fields: typeof fields }).fields
      else if (message.name === 'dataRow') {
        const row: Record<string, unknown> = {}
        const values = (message as unknown as { fields: (string | null)[] }).fields
        for (let i = 0; i < fields.length; i++) {
          const { name, dataTypeID } = fields[i]!
          const text = values[i]
          const parser = text === null || text === undefined ? undefined : parsers[dataTypeID]
          row[name] = parser ? parser(text as string, dataTypeID) : (text ?? null)
        }
        rows.push(row as R)
      } else if (message.name === 'commandComplete')
        affected += changedRows((message as unknown as { text: string }).text)
    }
    return affected ? { rows, numAffectedRows: BigInt(affected) } : { rows }
  }
}

/** Rows a command tag reports (`UPDATE 3`, `INSERT 0 1`); 0 for commands that change none. */
function changedRows(tag: string): number {
  const [command, a, b] = tag.split(' ')
  if (command === 'INSERT') return Number(b)
  if (command === 'UPDATE' || command === 'DELETE' || command === 'MERGE' || command === 'COPY')
    return Number(a)
  return 0
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}
