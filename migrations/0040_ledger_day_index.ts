import { type Kysely, sql } from 'kysely'

/**
 * The points ledger by account and community day (issue #16): the nightly points family reads
 * one day's entries and those after it (the stocks at the day's end are today's minus what came
 * later); without this index both were full scans of the ledger (5M rows in bench:analytics).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index points_ledger_appid_day_idx on points_ledger (appid, day)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index points_ledger_appid_day_idx`.execute(db)
}
