import { type Kysely, sql } from 'kysely'

/**
 * The campaign report's per-variant counts (its funnel: audience, enqueued, sent, delivered,
 * clicked, converted …) kept beside its reach in `campaign_reach`, as of the same count. Counting
 * them reads every kept recipient joined to its outbox item and member: about 0.6 s for 100,000 on
 * PGlite and 1.9–2.9 s for 1,000,000, on the server's one thread, every time the report was
 * viewed (bench/README.md, issue 20, session 32). A large campaign's report now shows them as last
 * counted, recounted with the reach at most once a minute. Null in a row counted before this
 * migration (the report counts them on the spot until the next recount).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table campaign_reach add column counts text`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table campaign_reach drop column counts`.execute(db)
}
