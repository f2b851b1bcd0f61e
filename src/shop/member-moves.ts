/**
 * What a 绑定 moves besides commerce (mp-link.ts moves orders, membership and points): everything
 * else a mini-program user wrote to their own member before it, so that nothing they made is left
 * on the member they leave — after the 绑定 they act as the follower (linked-member.ts).
 *
 *   check-in reminder   moved; when both have one it is merged: a reminder that is on stays on
 *                       (both on: the follower's time), else a 取消提醒 of either is kept (the
 *                       community's 09:00 reminder stays away), at most one reminder a day, the OA
 *                       authorisation the follower's, the mini-program one the latest granted
 *                       that has sends left (the same template and openid: the sends added up)
 *   profile             merged: the follower's own values win, the mini-program member's fill
 *                       the gaps; a profile complete only now earns `complete_profile`, unless
 *                       either member earned it before (profile.ts `profileRewarded`)
 *   share links         moved with their opens; a link to what the follower shares too is merged
 *                       into the follower's: its opens and clicks join it and its code opens it
 *                       (`share_link_aliases`), so an opener counts once
 *   reviews             moved with the orders they review: hiding one takes back from the follower
 *   activity days       the analytics' `member_days` moved, merged into the follower's day (kinds
 *                       OR-ed) where both were active: the orders moved are the follower's, so a
 *                       rebuilt day counts the buyer once, as the follower (rollup.ts)
 *
 * Callers hold the activity-days gates of the move ({@link gateMemberMove}), taken before any
 * row lock of their transaction, then both members' rows locked (in id order); each step locks
 * the rows it changes after them, as every writer of those rows does. A writer that inserts a
 * reminder or a share link holds the member's row first (points-ledger.ts `keyShareMember`): it
 * comes before the move (which then merges into what it wrote) or after it (it writes onto what
 * was moved), never meets it on a key.
 * An open of a link merged away that waited for its row finds the row gone and is counted through
 * the alias, committed with the delete (shares.ts `openShareLink`).
 */
import { sql, type Transaction } from 'kysely'
import { lockActivityDays, tryLockActivityDays } from '../analytics/facts.js'
import { lockMember } from '../community/points-ledger.js'
import { changeProfile } from '../community/profile.js'
import type { Database } from '../db/schema.js'

/** A move from the mini-program member `from` to the follower `to`. */
export interface MemberMove {
  from: number
  to: number
  /** The follower's account (rows that carry an appid are the follower's from now on). */
  toAppid: string
  now: Date
  timeZone: string
  /** The accounts whose activity-days gate the transaction holds ({@link gateMemberMove}). */
  gated: Set<string>
}

/**
 * The move found, its rows locked, days of the member in an account it had not gated, and a
 * build holds that account's gate: it must not wait there (facts.ts `lockActivityDays`), so the
 * transaction rolls back and the 绑定 runs again (mp-link.ts), gating that account first.
 */
export class MoveGateBusy extends Error {
  constructor(readonly appid: string) {
    super(`member move: a build of ${appid} holds its activity days, try again`)
    this.name = 'MoveGateBusy'
  }
}

/**
 * The activity-days gates (facts.ts `lockActivityDays`) of a move from the member `from` to a
 * follower of `toAppid`, exclusive: the follower's account and each account `from` has days in,
 * in appid order, then the member's accounts read again under the gates until no new one shows.
 * Call it before the transaction's first row lock: waiting here for a build of those accounts
 * (seconds at a million members) holds nothing else. Returns the accounts gated, for
 * {@link MemberMove}'s `gated`.
 */
export async function gateMemberMove(
  trx: Transaction<Database>,
  from: number,
  toAppid: string,
): Promise<Set<string>> {
  const gated = new Set<string>()
  for (;;) {
    const more = (await accountsToGate(trx, from, toAppid)).filter((appid) => !gated.has(appid))
    if (more.length === 0) return gated
    for (const appid of more) {
      await lockActivityDays(trx, appid, 'exclusive')
      gated.add(appid)
    }
  }
}

/** The follower's account and every account `from` has activity days in, in appid order. */
async function accountsToGate(trx: Transaction<Database>, from: number, toAppid: string) {
  const rows = await trx
    .selectFrom('member_days')
    .select('appid')
    .distinct()
    .where('member_id', '=', from)
    .execute()
  return [...new Set([toAppid, ...rows.map((r) => r.appid)])].sort()
}

/** What {@link moveMemberData} did. */
export interface MovedMemberData {
  /** Points `complete_profile` paid the follower now (null: none). */
  profileAwarded: number | null
  /** Links moved, and links merged into the follower's own. */
  movedLinks: number
  mergedLinks: number
}

/** Moves or merges everything listed in the module comment, in the caller's transaction. */
export async function moveMemberData(
  trx: Transaction<Database>,
  m: MemberMove,
): Promise<MovedMemberData> {
  await moveReminder(trx, m)
  const profileAwarded = await mergeProfile(trx, m)
  const links = await moveShareLinks(trx, m)
  await trx
    .updateTable('product_reviews')
    .set({ member_id: m.to })
    .where('member_id', '=', m.from)
    .execute()
  await moveActivityDays(trx, m)
  return { profileAwarded, ...links }
}

/**
 * The member's activity days (`member_days`, by account and day): each becomes the follower's,
 * its kinds OR-ed into the follower's own row of that day. A build of a day (rollup.ts) and this
 * pass each other at the accounts' gate, never a deadlock: a build already running ends first —
 * a purchase it read before the orders moved is written to the member and moved here with the
 * rest — and one starting now waits for the commit, then reads the orders as the follower's.
 */
async function moveActivityDays(trx: Transaction<Database>, m: MemberMove): Promise<void> {
  // The gates were taken before any row (gateMemberMove). An account not among them now — the
  // member got its first days there, or the link changed, since — is taken only if no build holds
  // it: waiting here would hold the members' rows (see facts.ts), so the 绑定 starts over.
  for (;;) {
    const more = (await accountsToGate(trx, m.from, m.toAppid)).filter((a) => !m.gated.has(a))
    if (more.length === 0) break
    for (const appid of more) {
      if (!(await tryLockActivityDays(trx, appid))) throw new MoveGateBusy(appid)
      m.gated.add(appid)
    }
  }
  await sql`insert into member_days as d (appid, day, member_id, kinds)
    select appid, day, ${m.to}::bigint, kinds from member_days where member_id = ${m.from}
    on conflict (appid, day, member_id) do update set kinds = d.kinds | excluded.kinds
    where d.kinds | excluded.kinds <> d.kinds`.execute(trx)
  await trx.deleteFrom('member_days').where('member_id', '=', m.from).execute()
}

/** The check-in reminder (see the module comment for which half of a merge wins). */
async function moveReminder(trx: Transaction<Database>, m: MemberMove): Promise<void> {
  const rows = await trx
    .selectFrom('checkin_reminders')
    .select('member_id')
    .where('member_id', 'in', [m.from, m.to])
    .orderBy('member_id')
    .forUpdate()
    .execute()
  if (!rows.some((r) => r.member_id === m.from)) return
  if (!rows.some((r) => r.member_id === m.to)) {
    await trx
      .updateTable('checkin_reminders')
      .set({ member_id: m.to, appid: m.toAppid, updated_at: m.now })
      .where('member_id', '=', m.from)
      .execute()
    return
  }
  // t: the follower's, o: the one moved
  const keep = sql`(t.enabled or not o.enabled)`
  const same = sql`(o.mp_openid is not distinct from t.mp_openid
    and o.mp_template_id is not distinct from t.mp_template_id)`
  const theirs = sql`(o.mp_credits > 0 and (t.mp_credits = 0
    or coalesce(o.mp_granted_at, '-infinity') >= coalesce(t.mp_granted_at, '-infinity')))`
  await sql`update checkin_reminders t set
      enabled = t.enabled or o.enabled,
      cancelled = not (t.enabled or o.enabled) and (t.cancelled or o.cancelled),
      minute_of_day = case when ${keep} then t.minute_of_day else o.minute_of_day end,
      next_at = case when ${keep} then t.next_at else o.next_at end,
      reminded_on = greatest(t.reminded_on, o.reminded_on),
      oa_template_id = coalesce(t.oa_template_id, o.oa_template_id),
      oa_credits = case when t.oa_template_id is null then o.oa_credits else t.oa_credits end,
      mp_openid = case when not ${same} and ${theirs} then o.mp_openid else t.mp_openid end,
      mp_template_id = case when not ${same} and ${theirs} then o.mp_template_id
        else t.mp_template_id end,
      mp_credits = case when ${same} then t.mp_credits + o.mp_credits
        when ${theirs} then o.mp_credits else t.mp_credits end,
      mp_granted_at = case when ${same} then greatest(t.mp_granted_at, o.mp_granted_at)
        when ${theirs} then o.mp_granted_at else t.mp_granted_at end,
      updated_at = ${m.now}::timestamptz
    from checkin_reminders o
    where t.member_id = ${m.to} and o.member_id = ${m.from}`.execute(trx)
  await trx.deleteFrom('checkin_reminders').where('member_id', '=', m.from).execute()
}

/** The profile's gaps filled, then `complete_profile` if it is complete now and was never paid. */
async function mergeProfile(trx: Transaction<Database>, m: MemberMove): Promise<number | null> {
  await sql`update members t set
      display_name = coalesce(t.display_name, o.display_name),
      birth_month = coalesce(t.birth_month, o.birth_month),
      city = coalesce(t.city, o.city)
    from members o
    where t.id = ${m.to} and o.id = ${m.from}`.execute(trx)
  const member = await lockMember(trx, m.to)
  const u = await changeProfile(trx, member, {}, { now: m.now, timeZone: m.timeZone })
  return u.awarded
}

/** The share links, moved or merged into the follower's own (see the module comment). */
async function moveShareLinks(trx: Transaction<Database>, m: MemberMove) {
  const links = await trx
    .selectFrom('share_links')
    .select(['id', 'code', 'kind', 'ref', 'clicks'])
    .where('member_id', '=', m.from)
    .orderBy('id')
    .forUpdate()
    .execute()
  let movedLinks = 0
  let mergedLinks = 0
  for (const link of links) {
    const own = await trx
      .selectFrom('share_links')
      .select('id')
      .where('member_id', '=', m.to)
      .where('kind', '=', link.kind)
      .where('ref', '=', link.ref)
      .forUpdate()
      .executeTakeFirst()
    if (!own) {
      // the sharer's address hash stays salted with the member who asked for the link
      await trx
        .updateTable('share_links')
        .set((eb) => ({
          member_id: m.to,
          address_salt: eb.fn.coalesce('address_salt', 'member_id'),
        }))
        .where('id', '=', link.id)
        .execute()
      movedLinks++
      continue
    }
    await sql`insert into share_opens (link_id, opener, outcome, created_at)
      select ${own.id}::bigint, opener, outcome, created_at from share_opens
      where link_id = ${link.id}
      on conflict (link_id, opener) do nothing`.execute(trx)
    await trx.deleteFrom('share_opens').where('link_id', '=', link.id).execute()
    await trx
      .updateTable('share_links')
      .set((eb) => ({ clicks: eb('clicks', '+', link.clicks) }))
      .where('id', '=', own.id)
      .execute()
    await trx
      .updateTable('share_link_aliases')
      .set({ link_id: own.id })
      .where('link_id', '=', link.id)
      .execute()
    await trx
      .insertInto('share_link_aliases')
      .values({ code: link.code, link_id: own.id, created_at: m.now })
      .execute()
    await trx.deleteFrom('share_links').where('id', '=', link.id).execute()
    mergedLinks++
  }
  return { movedLinks, mergedLinks }
}
