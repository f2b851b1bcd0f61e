import type { Kysely } from 'kysely'
import { type ColumnDomain, toDomains, toTableChecks } from './column-domains.js'

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
 * The step is column-domains.ts's: each column's type changes without a rewrite; adding each
 * domain's constraint then scans the table (four scans of `members`, one of `inbound_events`).
 * Both tables are locked exclusively first, in the order a push locks them (`inbound_events`,
 * then `members`: a push waiting on `members` while holding `inbound_events` would otherwise
 * deadlock the migration), until the migrations commit. A table analyzed before with rows has
 * its altered columns analyzed again at the end. On 1,002,000 members and
 * 1,215,511 stored pushes `up` took 1.3–1.6 s (PostgreSQL 15).
 */
const DOMAINS: readonly ColumnDomain[] = [
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
]

/** Both tables, in the order a push locks them (see the file's comment). */
const LOCK_ORDER = ['inbound_events', 'members']

export async function up(db: Kysely<unknown>): Promise<void> {
  await toDomains(db, DOMAINS, LOCK_ORDER)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await toTableChecks(db, DOMAINS, LOCK_ORDER)
}
