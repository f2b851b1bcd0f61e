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
 * Nothing else changes: a value that broke a table constraint breaks the domain's (SQLSTATE 23514,
 * `check_violation`, as before; the message names the domain), comparisons and results see the
 * base type (a domain column is sent to clients with its base type's OID), and no code names these
 * constraints. Each column's type changes without a rewrite (a domain without constraints is
 * binary-coercible to its base type); adding each domain's constraint then checks the rows there
 * are, once (the migration holds both tables exclusively meanwhile: 1.6 s for 1,000,000 members and
 * as many stored pushes, PostgreSQL 15).
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

export async function up(db: Kysely<unknown>): Promise<void> {
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
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const { domain, base, columns } of DOMAINS) {
    for (const { table, column, check } of columns)
      await sql
        .raw(`alter table ${table} alter column ${column} type ${base},
          add constraint ${tableConstraint(table, column)} check (${check})`)
        .execute(db)
    await sql.raw(`drop domain ${domain}`).execute(db)
  }
}
