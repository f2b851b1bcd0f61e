import { type Kysely, sql } from 'kysely'

/**
 * Mini-program subscribe messages in the outbox (issue #19, part 3): a check-in reminder a member
 * authorised in the mini program (`wx.requestSubscribeMessage`) is sent through the mini
 * program's `/cgi-bin/message/subscribe/send` with the mini program's access token — a fourth
 * outbox kind, `mp_subscribe`, with its own daily-quota pause (45009 on the mini program's API
 * does not hold the account's own subscribe messages).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox drop constraint push_outbox_kind_check`.execute(db)
  await sql`alter table push_outbox add constraint push_outbox_kind_check
    check (kind in ('template', 'custom', 'subscribe', 'mp_subscribe'))`.execute(db)
  await sql`alter table outbox_pauses drop constraint outbox_pauses_api_check`.execute(db)
  await sql`alter table outbox_pauses add constraint outbox_pauses_api_check
    check (api in ('template', 'custom', 'subscribe', 'mp_subscribe', 'mass'))`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from push_outbox where kind = 'mp_subscribe'`.execute(db)
  await sql`delete from outbox_pauses where api = 'mp_subscribe'`.execute(db)
  await sql`alter table push_outbox drop constraint push_outbox_kind_check`.execute(db)
  await sql`alter table push_outbox add constraint push_outbox_kind_check
    check (kind in ('template', 'custom', 'subscribe'))`.execute(db)
  await sql`alter table outbox_pauses drop constraint outbox_pauses_api_check`.execute(db)
  await sql`alter table outbox_pauses add constraint outbox_pauses_api_check
    check (api in ('template', 'custom', 'subscribe', 'mass'))`.execute(db)
}
