/**
 * Outbox items past their deadline (`expires_at`, a check-in reminder's): stored `skipped`
 * ({@link EXPIRED}), and the one-time authorisation each used when it was enqueued given back, in
 * one statement — an item is never expired without its credit back, nor its credit given back
 * twice. Used by the reminder job's sweep of items queued or held by a dead claim
 * (checkin-reminders.ts `expireReminders`) and by a dispatcher for an item it claimed late
 * (outbox.ts).
 *
 * Lock order: the outbox items, then the members' reminder rows (`checkin_reminders`).
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../db/schema.js'

/** The errmsg of an item skipped because it was claimed after its deadline (`expires_at`). */
export const EXPIRED = 'expired'

/** Which items {@link expireItems} stores expired. */
export interface ExpiringItems {
  /**
   * The items, a condition on `push_outbox o`: checked as they are locked, and again as they are
   * changed (an item someone else changed meanwhile is left alone).
   */
  where: RawBuilder<boolean>
  now: Date
  /**
   * At most this many, earliest deadline first, skipping items others hold locked (a sweep).
   * Without it every item matching is expired, waiting for the locks others hold.
   */
  batch?: number
}

/**
 * Stores the matching items `skipped` (expired, their claim cleared) and gives back the one-time
 * authorisation each used when it was enqueued — a subscribe message's to the member's OA credits,
 * a mini-program one's to the credits of the mini-program openid it was addressed to, each only
 * while the reminder still counts that template; other kinds used none. One statement: both or
 * neither. Returns how many items were expired.
 * @example await expireItems(db, { where: sql`o.id = ${id} and o.claim_token = ${token}`, now })
 */
export async function expireItems(db: Kysely<Database>, e: ExpiringItems): Promise<number> {
  const pick =
    e.batch === undefined
      ? sql`for update`
      : sql`order by o.expires_at limit ${e.batch} for update skip locked`
  const { rows } = await sql<{ expired: number }>`
    with picked as (
      select o.id from push_outbox o where ${e.where} ${pick}
    ),
    done as (
      update push_outbox o set status = 'skipped', errcode = null, errmsg = ${EXPIRED},
        next_attempt_at = ${e.now}::timestamptz, claim_token = null, attempt_started_at = null
      from picked p
      where o.id = p.id and ${e.where}
      returning o.appid, o.openid, o.kind, o.payload::jsonb as payload
    ),
    credits as (
      select member_id, sum(oa)::integer as oa, sum(mp)::integer as mp from (
        select r.member_id, 1 as oa, 0 as mp
        from done d
        join members m on m.appid = d.appid and m.openid = d.openid
        join checkin_reminders r on r.member_id = m.id
          and r.oa_template_id = d.payload ->> 'template_id'
        where d.kind = 'subscribe'
        union all
        select r.member_id, 0, 1
        from done d
        join checkin_reminders r on r.appid = d.appid and r.mp_openid = d.payload ->> 'touser'
          and r.mp_template_id = d.payload ->> 'template_id'
        where d.kind = 'mp_subscribe'
      ) c
      group by member_id
    ),
    returned as (
      update checkin_reminders r set oa_credits = r.oa_credits + c.oa,
        mp_credits = r.mp_credits + c.mp, updated_at = ${e.now}::timestamptz
      from credits c
      where r.member_id = c.member_id
      returning r.member_id
    )
    select (select count(*) from done)::integer as expired,
      (select count(*) from returned)::integer as returned`.execute(db)
  return rows[0]!.expired
}
