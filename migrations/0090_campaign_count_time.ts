import { type Kysely, sql } from 'kysely'

/**
 * How long a campaign's last count took (`campaign_reach.count_ms`, wall time, waiting for the
 * database included): a large campaign's figures are recounted once older than 20 times that, or
 * a minute, whichever is longer (src/community/campaign-reach.ts `recountAge`). At a minute
 * whatever the cost, a report left open on 1,000,000 recipients on PGlite cost some 10 s of the
 * server's one thread every minute (bench/README.md, issue 20, session 34). Null in a row counted
 * before this migration (a minute).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table campaign_reach add column count_ms integer`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table campaign_reach drop column count_ms`.execute(db)
}
