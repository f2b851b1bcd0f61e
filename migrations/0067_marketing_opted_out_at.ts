import { type Kysely, sql } from 'kysely'

/**
 * `members.marketing_opted_out_at`: when the member last opted out of campaign pushes (退订 / TD,
 * or the console), set in the statement that sets `marketing_opt_out` (src/community/
 * marketing-opt-out.ts). The 退订 message is a member action — its receive moves `last_active_at`
 * — but it is no conversion: the campaign report and the journeys count only activity later than
 * this. Kept on opt-in (activity after the opt-out counts either way). Null for opt-outs before
 * this migration: their time is not known, and the conversion marking only ever reads the last few
 * minutes' activity, so a past opt-out's own activity is long behind it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table members add column marketing_opted_out_at timestamptz`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table members drop column marketing_opted_out_at`.execute(db)
}
