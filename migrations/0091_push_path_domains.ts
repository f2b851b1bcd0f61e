import { type Kysely, sql } from 'kysely'

/**
 * The CHECK constraints of the two tables every push writes become domains (issue #20 target 3;
 * measured in bench/README.md, "session 42"). The same rules, checked where a value is written.
 *
 * PostgreSQL reads a table's CHECK constraints from their stored text and prepares them anew for
 * every statement that writes a row of it (`ExecConstraints` → `stringToNode`, once per executor
 * start): `members` has five (≈ 4.3 kB of node text), `inbound_events` one. A push runs its
 * member update and its claim insert each as a statement of their own inside `quanzi_receive`,
 * so every push paid that parse and preparation — about a tenth of what a push cost PostgreSQL's
 * backend (a CPU profile of the (c) bench). A domain's constraints are read once per connection
 * (the type cache), and are checked only on a column a statement assigns: the push's member
 * update sets none of these columns, its claim sets `status`.
 *
 * The same rules otherwise: a value that broke a table constraint breaks the domain's (SQLSTATE
 * 23514, `check_violation`; the message names the domain), comparisons and results see the base
 * type (a domain column is sent to clients with its base type's OID), and no code names these
 * constraints. Two differences for whoever writes a function on these tables: a PL/pgSQL
 * assignment to a `members%rowtype` field checks the domain at the assignment (the functions
 * here only assign values already checked, or fail as they did, with the same SQLSTATE), and a
 * value that breaks both NOT NULL and a domain's rule reports 23514 rather than 23502.
 *
 * Each column's type changes without a rewrite (a domain without constraints is
 * binary-coercible to its base type); adding each domain's constraint then scans the table (four
 * scans of `members`, one of `inbound_events`). Both tables are locked exclusively first, in the
 * order a push locks them (`inbound_events`, then `members`: a push waiting on `members` while
 * holding `inbound_events` would otherwise deadlock the migration), until the migrations commit.
 * The type change drops the columns' statistics: a table analyzed before with rows is analyzed
 * again at the end (an empty one is not: see `analyzedTables`). On 1,002,000 members and
 * 1,215,511 stored pushes `up` took 1.3–1.6 s (PostgreSQL 15).
 */
const DOMAINS = [
  {
    domain: 'member_points',
    base: 'integer',
    check: 'value >= 0',
    columns: [
      { table: 'members', column: 'points_balance', check: 'points_balance >= 0' },
      { table: 'members', column: 'points_frozen', check: 'points_frozen >= 0' },
    ],
  },
  {
    domain: 'member_birth_month',
    base: 'smallint',
    check: 'value between 1 and 12',
    columns: [{ table: 'members', column: 'birth_month', check: 'birth_month between 1 and 12' }],
  },
  {
    domain: 'member_city',
    base: 'text',
    check: 'char_length(value) between 1 and 20',
    columns: [{ table: 'members', column: 'city', check: 'char_length(city) between 1 and 20' }],
  },
  {
    domain: 'member_display_name',
    base: 'text',
    check: `char_length(value) between 1 and 16 and value !~ '[[:cntrl:]]'`,
    columns: [
      {
        table: 'members',
        column: 'display_name',
        check: `char_length(display_name) between 1 and 16 and display_name !~ '[[:cntrl:]]'`,
      },
    ],
  },
  {
    domain: 'inbound_status',
    base: 'text',
    check: `value in ('processing', 'replied', 'deferred', 'follow_up', 'failed')`,
    columns: [
      {
        table: 'inbound_events',
        column: 'status',
        check: `status in ('processing', 'replied', 'deferred', 'follow_up', 'failed')`,
      },
    ],
  },
] as const

/** The table constraint each column had: PostgreSQL's default name for a column's CHECK. */
const tableConstraint = (table: string, column: string) => `${table}_${column}_check`

/** Both tables, in the order a push locks them (see the file's comment). */
const lockTables = (db: Kysely<unknown>) =>
  sql`lock table inbound_events, members in access exclusive mode`.execute(db)

/**
 * The tables whose columns had statistics to lose: analyzed before, with rows. An empty table is
 * left unanalyzed, as it was — statistics saying "empty" would hold the planner to it on PGlite
 * (no autovacuum) while the table fills.
 */
async function analyzedTables(db: Kysely<unknown>): Promise<string[]> {
  const tables = [...new Set(DOMAINS.flatMap((d) => d.columns.map((c) => c.table)))]
  const { rows } = await sql<{ name: string }>`select t.name
    from unnest(${tables}::text[]) as t(name) join pg_class c on c.oid = to_regclass(t.name)
    where c.reltuples > 0`.execute(db)
  return rows.map((r) => r.name)
}

/** The altered columns of `tables` analyzed again (a column's type change drops its statistics). */
async function analyzeColumns(db: Kysely<unknown>, tables: string[]): Promise<void> {
  for (const table of tables) {
    const columns = DOMAINS.flatMap((d) => d.columns.filter((c) => c.table === table))
    await sql.raw(`analyze ${table} (${columns.map((c) => c.column).join(', ')})`).execute(db)
  }
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await lockTables(db)
  const analyzed = await analyzedTables(db)
  for (const { domain, base, check, columns } of DOMAINS) {
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
  await analyzeColumns(db, analyzed)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await lockTables(db)
  const analyzed = await analyzedTables(db)
  for (const { domain, base, columns } of DOMAINS) {
    for (const { table, column, check } of columns)
      await sql
        .raw(`alter table ${table} alter column ${column} type ${base},
          add constraint ${tableConstraint(table, column)} check (${check})`)
        .execute(db)
    await sql.raw(`drop domain ${domain}`).execute(db)
  }
  await analyzeColumns(db, analyzed)
}
