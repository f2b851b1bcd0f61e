/** Opens the database the configuration names: PostgreSQL when DATABASE_URL is set, else PGlite. */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cp, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { type Kysely, type LogEvent, sql } from 'kysely'
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js'
import { type MigrationSummary, migrateToLatest } from './migrate.js'
import { postgresDatabase } from './postgres.js'
import type { Database } from './schema.js'

/** An open, migrated database and what it runs on. */
export interface OpenDatabase {
  db: Kysely<Database>
  /**
   * The same database for background work (jobs, outbox workers, report recounts): on PGlite
   * its statements wait while a request's statement waits for the one connection
   * (pglite-driver.ts); on PostgreSQL it is `db`.
   */
  background: Kysely<Database>
  kind: 'postgres' | 'pglite'
  /** Where it lives, without credentials. */
  location: string
  /** What the start-up migration did. */
  migrations: MigrationSummary
  /** PGlite only: this process's hold on the data folder (released by {@link closeDatabase}). */
  lock?: DataDirLock
}

/** The database could not be reached or refused us; the message names DATABASE_URL, host and port. */
export class DatabaseUnreachableError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'DatabaseUnreachableError'
  }
}

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  databaseUrl?: string
  /** PostgreSQL: statements each connection keeps prepared (default 100, 0 = none). */
  statementCache?: number
  /** PostgreSQL: connections the pool opens at most (default `DEFAULT_POOL_MAX`). */
  poolMax?: number
  dataDir: string
  /** Who opens it, recorded in the PGlite lock (`server`, `job`, `migrate`). */
  role?: string
  /** A migrated PGlite data folder to copy when the data folder is new (`npm install` makes one). */
  templateDir?: string
  /** Told what start-up is doing ("creating …", "migrations: …"). */
  progress?: (message: string, fields?: Record<string, unknown>) => void
  /** Told of every statement Kysely runs, with its run time (database-logs.ts). */
  onStatement?: (event: LogEvent) => void
  /**
   * PostgreSQL: told of an error on a connection no statement was using (the server closed it: a
   * restart, a failover, a proxy's timeout). The pool has dropped it; the next statement opens
   * another.
   */
  onIdleError?: (error: Error) => void
}

/**
 * Opens and migrates the database. PGlite keeps its files in `<dataDir>/pglite`, held by one process
 * at a time (`<dataDir>/pglite.lock`); a new folder starts from the template when there is one, else
 * from initdb (several seconds). PGlite is loaded only when used, so PostgreSQL deployments never
 * load its WebAssembly.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<OpenDatabase> {
  const progress = options.progress ?? (() => {})
  if (options.databaseUrl) {
    const url = new URL(options.databaseUrl)
    const location = `${url.hostname}:${url.port || 5432}${url.pathname}`
    const db = postgresDatabase(options.databaseUrl, {
      statementCache: options.statementCache,
      max: options.poolMax,
      log: options.onStatement,
      onIdleError: options.onIdleError,
    })
    try {
      await sql`select 1`.execute(db)
    } catch (error) {
      await db.destroy().catch(() => {})
      throw unreachable(error, url)
    }
    const started = performance.now()
    const migrations = await migrateToLatest(db)
    report(progress, migrations, started)
    return { db, background: db, kind: 'postgres', location, migrations }
  }
  const dir = join(options.dataDir, 'pglite')
  await mkdir(options.dataDir, { recursive: true })
  const lock = acquireDataDirLock(dir, options.role ?? 'server')
  try {
    if (!existsSync(join(dir, 'PG_VERSION')))
      await createDataDir(dir, options.templateDir, progress)
    const { db, background } = await pgliteDatabases(dir, { log: options.onStatement })
    const started = performance.now()
    const migrations = await migrateToLatest(db)
    report(progress, migrations, started)
    await tunePglite(db)
    return { db, background, kind: 'pglite', location: dir, migrations, lock }
  } catch (error) {
    lock.release()
    throw error
  }
}

/** Closes the database and gives back the data folder. */
export async function closeDatabase(open: Pick<OpenDatabase, 'db' | 'lock'>): Promise<void> {
  try {
    await open.db.destroy()
  } finally {
    open.lock?.release()
  }
}

function report(
  progress: NonNullable<OpenDatabaseOptions['progress']>,
  m: MigrationSummary,
  started: number,
) {
  const ms = Math.round(performance.now() - started)
  if (m.applied.length === 0) progress(`migrations: up to date (${m.total})`, { ms })
  else progress(`migrations: ${m.applied.length} applied in ${(ms / 1000).toFixed(1)} s`, { ms })
}

/**
 * PostgreSQL's default 128 MB of shared buffers costs PGlite ~0.5 s at every start (the buffer pool
 * is set up in WebAssembly memory); 16 MB is plenty for an embedded database, whose files the
 * operating system caches anyway. Written with ALTER SYSTEM, so it holds from the next start on.
 */
async function tunePglite(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{
    value: string
  }>`select current_setting('shared_buffers') as value`.execute(db)
  if (rows[0]?.value !== PGLITE_SHARED_BUFFERS)
    await sql.raw(`alter system set shared_buffers = '${PGLITE_SHARED_BUFFERS}'`).execute(db)
}

const PGLITE_SHARED_BUFFERS = '16MB'

/** The installed PGlite's version: a template is used only by the PGlite that made it. */
export function pgliteVersion(): string {
  const require = createRequire(import.meta.url)
  const main = require.resolve('@electric-sql/pglite')
  let dir = dirname(main)
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string })
    .version
}

/** The marker a template folder carries: which PGlite made it. */
export const TEMPLATE_MARKER = 'quanzi-template.json'

function usableTemplate(templateDir: string | undefined): string | undefined {
  if (!templateDir) return undefined
  try {
    const marker = JSON.parse(readFileSync(join(templateDir, TEMPLATE_MARKER), 'utf8'))
    return marker.pglite === pgliteVersion() ? templateDir : undefined
  } catch {
    return undefined
  }
}

/** A new data folder: a copy of the template (≈ 0.1 s) or initdb (≈ 5–10 s), made aside and renamed. */
async function createDataDir(
  dir: string,
  templateDir: string | undefined,
  progress: NonNullable<OpenDatabaseOptions['progress']>,
) {
  if (existsSync(dir) && (await readdir(dir)).length > 0)
    throw new Error(
      `${dir} is not empty but holds no database (no PG_VERSION); move it away to start afresh`,
    )
  const template = usableTemplate(templateDir)
  const draft = `${dir}.new`
  await rm(draft, { recursive: true, force: true })
  const started = performance.now()
  if (template) {
    progress(`database: creating ${dir} from the template`)
    await copyFolder(template, draft)
    await rm(join(draft, TEMPLATE_MARKER), { force: true })
  } else {
    progress(
      `database: creating ${dir} (initdb, takes several seconds; npm install makes a template)`,
    )
    const db = await pgliteDatabase(draft)
    await db.destroy()
  }
  await rm(dir, { recursive: true, force: true })
  await rename(draft, dir)
  progress('database: created', { ms: Math.round(performance.now() - started) })
}

/** `cp -R` (≈ 0.1 s for the ~1,200 files of a data folder); fs.cp (≈ 1–2 s) where there is no cp. */
async function copyFolder(from: string, to: string) {
  try {
    await promisify(execFile)('cp', ['-R', from, to])
  } catch {
    await rm(to, { recursive: true, force: true })
    await cp(from, to, { recursive: true })
  }
}

const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused — is PostgreSQL running there?',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name did not resolve',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'host unreachable',
  '28P01': 'password authentication failed — check the user and password',
  '28000': 'the server refused this user (pg_hba.conf)',
  '3D000': 'the database does not exist — create it first',
}

/** Names DATABASE_URL, the host, port and database, and the cause — never the password. */
function unreachable(error: unknown, url: URL): DatabaseUnreachableError {
  const e = error as { code?: string; errors?: { code?: string }[]; message?: string }
  const code = e.code ?? e.errors?.[0]?.code ?? 'UNKNOWN'
  const where = `${url.hostname}:${url.port || 5432}${url.pathname}`
  const user = url.username ? ` as ${decodeURIComponent(url.username)}` : ''
  const cause = CAUSES[code] ?? (e.message ?? String(error)).replaceAll(url.password || '\0', '***')
  return new DatabaseUnreachableError(
    `DATABASE_URL: cannot connect to ${where}${user}: ${cause} (${code})`,
    code,
  )
}

/** What {@link pgliteDatabase} takes. */
interface PgliteOptions {
  loadDataDir?: Blob
  log?: (event: LogEvent) => void
}

/**
 * A Kysely instance on PGlite; `dataDir` undefined → in memory. `loadDataDir` starts it from a
 * tarball made by PGlite's `dumpDataDir` instead of initdb (the tests' template); `log` is Kysely's.
 */
export async function pgliteDatabase(
  dataDir?: string,
  options: PgliteOptions = {},
): Promise<Kysely<Database>> {
  return (await pgliteDatabases(dataDir, options)).db
}

/**
 * {@link pgliteDatabase}, and a second Kysely instance on the same PGlite for background work,
 * whose statements wait while the first's wait (pglite-driver.ts). Destroying either closes PGlite.
 */
export async function pgliteDatabases(
  dataDir?: string,
  { log, ...options }: PgliteOptions = {},
): Promise<{ db: Kysely<Database>; background: Kysely<Database> }> {
  const [{ PGlite }, { pgliteDialect }, { Kysely }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('./pglite-driver.js'),
    import('kysely'),
  ])
  // src/start.mjs may have compiled PGlite's WebAssembly while the server loaded.
  const precompiled = await (
    globalThis as { quanziPgliteWasm?: Promise<WebAssembly.Module> }
  ).quanziPgliteWasm?.catch(() => undefined)
  const pglite = new PGlite(dataDir, { ...options, pgliteWasmModule: precompiled })
  await pglite.waitReady
  return {
    db: new Kysely<Database>({ dialect: pgliteDialect(pglite), log }),
    background: new Kysely<Database>({ dialect: pgliteDialect(pglite, { background: true }), log }),
  }
}

/**
 * Makes (or remakes) the template a new PGlite data folder is copied from: initdb and every
 * migration, done once at install time so that a first start takes a copy instead of seconds.
 */
export async function makePgliteTemplate(templateDir: string): Promise<void> {
  const draft = `${templateDir}.new`
  await rm(draft, { recursive: true, force: true })
  const db = await pgliteDatabase(draft)
  await migrateToLatest(db)
  await tunePglite(db)
  await db.destroy()
  await writeFile(join(draft, TEMPLATE_MARKER), JSON.stringify({ pglite: pgliteVersion() }))
  await rm(templateDir, { recursive: true, force: true })
  await rename(draft, templateDir)
}
