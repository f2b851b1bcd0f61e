import { type Kysely, sql } from 'kysely'

/**
 * Table CHECK constraints of one column each, turned into domains with the same rule and back
 * (migrations 0091 and 0092; why: 0091's comment). Not a migration: the step both take.
 *
 * Each column's type changes without a rewrite (a domain without constraints is binary-coercible
 * to its base type); adding each domain's constraint then scans its columns' tables. The tables
 * are locked exclusively first, in `lockOrder` — the order the statements that write them lock
 * them, so that none of those waits on one table while holding the other — until the migrations
 * commit. The type change drops the columns' statistics: a table analyzed before with rows is
 * analyzed again at the end (an empty one is not: see {@link analyzedTables}).
 */
export interface ColumnDomain {
  domain: string
  base: string
  /** The domain's rule, on `value`. */
  check: string
  /** Its columns, each with the rule its table CHECK had (PostgreSQL's default name for it). */
  columns: readonly { table: string; column: string; check: string }[]
}

/** The table constraint each column had: PostgreSQL's default name for a column's CHECK. */
const tableConstraint = (table: string, column: string) => `${table}_${column}_check`

const lockTables = (db: Kysely<unknown>, lockOrder: readonly string[]) =>
  sql.raw(`lock table ${lockOrder.join(', ')} in access exclusive mode`).execute(db)

/**
 * The tables whose columns had statistics to lose: analyzed before, with rows. An empty table is
 * left unanalyzed, as it was — statistics saying "empty" would hold the planner to it on PGlite
 * (no autovacuum) while the table fills.
 */
async function analyzedTables(
  db: Kysely<unknown>,
  domains: readonly ColumnDomain[],
): Promise<string[]> {
  const tables = [...new Set(domains.flatMap((d) => d.columns.map((c) => c.table)))]
  const { rows } = await sql<{ name: string }>`select t.name
    from unnest(${tables}::text[]) as t(name) join pg_class c on c.oid = to_regclass(t.name)
    where c.reltuples > 0`.execute(db)
  return rows.map((r) => r.name)
}

/** The altered columns of `tables` analyzed again (a column's type change drops its statistics). */
async function analyzeColumns(
  db: Kysely<unknown>,
  domains: readonly ColumnDomain[],
  tables: string[],
): Promise<void> {
  for (const table of tables) {
    const columns = domains.flatMap((d) => d.columns.filter((c) => c.table === table))
    await sql.raw(`analyze ${table} (${columns.map((c) => c.column).join(', ')})`).execute(db)
  }
}

/**
 * Runs `alter` with the tables locked (in `lockOrder`), then analyzes again the altered columns of
 * the tables that had statistics before.
 */
async function altering(
  db: Kysely<unknown>,
  domains: readonly ColumnDomain[],
  lockOrder: readonly string[],
  alter: () => Promise<void>,
): Promise<void> {
  await lockTables(db, lockOrder)
  const analyzed = await analyzedTables(db, domains)
  await alter()
  await analyzeColumns(db, domains, analyzed)
}

/** Each column's table CHECK becomes its domain's. */
export async function toDomains(
  db: Kysely<unknown>,
  domains: readonly ColumnDomain[],
  lockOrder: readonly string[],
): Promise<void> {
  await altering(db, domains, lockOrder, async () => {
    for (const { domain, base, check, columns } of domains) {
      await sql.raw(`create domain ${domain} as ${base}`).execute(db)
      for (const { table, column } of columns)
        await sql
          .raw(`alter table ${table} drop constraint ${tableConstraint(table, column)},
            alter column ${column} type ${domain}`)
          .execute(db)
      await sql
        .raw(`alter domain ${domain} add constraint ${domain}_check check (${check})`)
        .execute(db)
    }
  })
}

/** The way back: each column its base type and its table CHECK again; the domains dropped. */
export async function toTableChecks(
  db: Kysely<unknown>,
  domains: readonly ColumnDomain[],
  lockOrder: readonly string[],
): Promise<void> {
  await altering(db, domains, lockOrder, async () => {
    for (const { domain, base, columns } of domains) {
      for (const { table, column, check } of columns)
        await sql
          .raw(`alter table ${table} alter column ${column} type ${base},
            add constraint ${tableConstraint(table, column)} check (${check})`)
          .execute(db)
      await sql.raw(`drop domain ${domain}`).execute(db)
    }
  })
}
