import { type Kysely, sql } from 'kysely'

/**
 * What a message already did, so handling it again does not do it twice (a bridge event or WeCom
 * callback handed back to its sender's retry after a later step failed):
 * - `redemptions.request_key`: the message a redemption answers (`兑换 <编号>`), unique per
 *   account like the ledger's idempotency keys; the retry finds the redemption and answers it
 *   again (src/community/rewards.ts). Null for redemptions made for no message (and the old ones).
 * - `binding_codes.used_by`: the identity (`<channel>:<external id>`) that used a code, so the
 *   same sender's retry of `绑定 <code>` is told it is bound, while anyone else is refused
 *   (src/community/identities.ts). Null for codes used by the mini program, or before this.
 * Both nullable without a default, so adding them rewrites nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table redemptions add column request_key text`.execute(db)
  await sql`create unique index redemptions_request_key on redemptions (appid, request_key)
    where request_key is not null`.execute(db)
  await sql`alter table binding_codes add column used_by text`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table binding_codes drop column used_by`.execute(db)
  await sql`drop index redemptions_request_key`.execute(db)
  await sql`alter table redemptions drop column request_key`.execute(db)
}
