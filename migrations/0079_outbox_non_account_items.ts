import { type Kysely, sql } from 'kysely'

/**
 * Settles the outbox items that no dispatcher will ever send: waiting (pending or held) items whose
 * appid is not an official account's — the mini program's (the appid of `mp_users`), e.g. a badge
 * notice to a mini-program-only buyer, or WeCom's (`wecom:<corpid>`) — enqueued before the outbox
 * refused them (src/community/outbox-accounts.ts). Stored `skipped` with the same errmsg, so
 * /healthz, /metrics and the console stop counting them as a backlog at once; the nightly
 * `retention` job settles any that an older instance writes during the upgrade, and deletes them
 * in their time. Nothing to undo.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update push_outbox o set status = 'skipped', errcode = null,
      errmsg = 'not an official account: no dispatcher serves this appid',
      next_attempt_at = now(), claim_token = null, attempt_started_at = null
    where o.status in ('pending', 'held')
      and (o.appid like 'wecom:%' or exists (select 1 from mp_users u where u.appid = o.appid))`.execute(
    db,
  )
}

export async function down(_db: Kysely<unknown>): Promise<void> {}
