import { type Kysely, sql } from 'kysely'

/**
 * Issue #19's gaps.
 *
 * Mini-program subscribe messages in the outbox (part 3): a check-in reminder a member
 * authorised in the mini program (`wx.requestSubscribeMessage`) is sent through the mini
 * program's `/cgi-bin/message/subscribe/send` with the mini program's access token — a fourth
 * outbox kind, `mp_subscribe`, with its own daily-quota pause (45009 on the mini program's API
 * does not hold the account's own subscribe messages).
 *
 * Reviews hidden and shown again (part 6, the console): `hides` counts how often a review was
 * hidden, so each hide's reversal and each unhide's restoration has its own ledger idempotency key
 * (`product_review_hidden:<id>` for the first hide, as before; `…:<id>:<n>` after).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox drop constraint push_outbox_kind_check`.execute(db)
  await sql`alter table push_outbox add constraint push_outbox_kind_check
    check (kind in ('template', 'custom', 'subscribe', 'mp_subscribe'))`.execute(db)
  await sql`alter table outbox_pauses drop constraint outbox_pauses_api_check`.execute(db)
  await sql`alter table outbox_pauses add constraint outbox_pauses_api_check
    check (api in ('template', 'custom', 'subscribe', 'mp_subscribe', 'mass'))`.execute(db)
  await sql`alter table product_reviews add column hides integer not null default 0
    check (hides >= 0)`.execute(db)
  await sql`update product_reviews set hides = 1 where status = 'hidden'`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table product_reviews drop column hides`.execute(db)
  await sql`delete from push_outbox where kind = 'mp_subscribe'`.execute(db)
  await sql`delete from outbox_pauses where api = 'mp_subscribe'`.execute(db)
  await sql`alter table push_outbox drop constraint push_outbox_kind_check`.execute(db)
  await sql`alter table push_outbox add constraint push_outbox_kind_check
    check (kind in ('template', 'custom', 'subscribe'))`.execute(db)
  await sql`alter table outbox_pauses drop constraint outbox_pauses_api_check`.execute(db)
  await sql`alter table outbox_pauses add constraint outbox_pauses_api_check
    check (api in ('template', 'custom', 'subscribe', 'mass'))`.execute(db)
}
