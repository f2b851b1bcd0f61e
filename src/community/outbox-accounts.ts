/**
 * The outbox is per official account: each item is sent by the dispatcher of its `appid`, and
 * dispatchers run only for official accounts. Members live under other appids too — the mini
 * program's (`MP_APPID`: its users who follow no account) and WeCom's (`wecom:<corpid>`: customer
 * contacts with no OA openid) — and an item addressed there would wait for ever (and count in
 * /healthz, /metrics and the console as a growing backlog); its openid could not receive an
 * official account's message anyway.
 *
 * So {@link enqueue} (outbox.ts) leaves such items out, and the nightly `retention` job settles any
 * that got in another way — written before this rule, or by an older instance during a rolling
 * upgrade — as `skipped` ({@link NOT_AN_ACCOUNT}). Told from the data alone, never from one
 * process's configuration (which may lag another's while accounts are added): a `wecom:` appid, or
 * the appid of mini-program users (`mp_users`; config.ts refuses an MP_APPID that is an account's).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'

/** The errmsg of an item settled because its appid is not an official account's. */
export const NOT_AN_ACCOUNT = 'not an official account: no dispatcher serves this appid'

/** Of `appids`, those that are not an official account's (see the file's comment). */
export async function nonAccountAppids(
  db: Kysely<Database>,
  appids: Iterable<string>,
): Promise<Set<string>> {
  const found = new Set<string>()
  const rest: string[] = []
  for (const appid of new Set(appids)) {
    if (appid.startsWith('wecom:')) found.add(appid)
    else rest.push(appid)
  }
  if (rest.length === 0) return found
  // One probe of the mp_users primary key (appid, openid) per appid.
  const { rows } = await sql<{ appid: string }>`
    select a.appid from (values ${sql.join(rest.map((a) => sql`(${a}::text)`))}) as a(appid)
    where exists (select 1 from mp_users u where u.appid = a.appid)`.execute(db)
  for (const r of rows) found.add(r.appid)
  return found
}

/**
 * Stores the waiting items (pending or held) whose appid is not an official account's `skipped`
 * ({@link NOT_AN_ACCOUNT}), at most `batch` per statement until none is left; returns how many.
 * Nothing claims them (no dispatcher serves their appid), so none is being sent.
 */
export async function settleNonAccountItems(
  db: Kysely<Database>,
  o: { now: Date; batch?: number },
): Promise<number> {
  const batch = o.batch ?? 5000
  let settled = 0
  for (;;) {
    const { rows } = await sql<{ n: number }>`
      with picked as (
        select o.id from push_outbox o
        where o.status in ('pending', 'held')
          and (o.appid like 'wecom:%' or exists (select 1 from mp_users u where u.appid = o.appid))
        limit ${batch}
        for update skip locked
      ),
      done as (
        update push_outbox o set status = 'skipped', errcode = null, errmsg = ${NOT_AN_ACCOUNT},
          next_attempt_at = ${o.now}::timestamptz, claim_token = null, attempt_started_at = null
        from picked p
        where o.id = p.id and o.status in ('pending', 'held')
        returning o.id
      )
      select count(*)::integer as n from done`.execute(db)
    const n = Number(rows[0]?.n ?? 0)
    settled += n
    if (n < batch) return settled
  }
}
