import { type Kysely, sql } from 'kysely'

/**
 * A points rule awards at least 1 point. A rule stored with 0 (the operator API allowed it until
 * now) made every award of it a zero ledger delta, which `points_ledger_delta_check` refuses: the
 * member's check-in or daily login failed. Such a rule awarded nothing, so it is kept as a turned-
 * off rule (1 point, `enabled = false`), and the table now refuses 0 or less.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update point_rules set points = 1, enabled = false where points <= 0`.execute(db)
  await sql`alter table point_rules add constraint point_rules_points_check check (points > 0)`.execute(
    db,
  )
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table point_rules drop constraint point_rules_points_check`.execute(db)
}
