/**
 * Linking a mini-program user WeChat gave no unionid to their official-account follower, with the
 * binding code the group channel uses: the follower sends 绑定 in the OA chat, then enters the
 * six-digit code in the mini program. In one transaction the code is used up, the mini-program
 * user's row points at the follower, and what the mini-program-only member had moves over: orders,
 * membership (the later expiry wins), purchase count and points (through the ledger: an entry out
 * of one and into the other, so Σ ledger == balance holds for both), and the purchases' grants with
 * their frozen points (purchase-grants.ts: released and taken back on the follower from then on).
 *
 * The rest of what the mini-program user wrote to their own member — check-in reminder, profile,
 * share links, reviews — and its activity days in the analytics' facts (`member_days`) move or
 * merge in the same transaction (member-moves.ts), and badges the moved purchases earn are awarded
 * to the follower. What stays on the member left behind is its history: its ledger entries
 * (Σ ledger == balance, both 0 now) and badges.
 *
 * A mini-program user already linked to a follower (by unionid or an earlier code) is not moved to
 * another one: that would take a follower's purchases away from them.
 *
 * Lock order: the activity-days gates of the move first (member-moves.ts `gateMemberMove`, from
 * the link and the code read without a lock) — a 绑定 waiting there for a build of the day holds
 * no row —, then the house order (orders.ts): the user's link (mp_users), the code, both members
 * in id order, then their orders, group buys, ledger and the rest.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import { awardBadges } from '../community/badges.js'
import { changePoints } from '../community/points-ledger.js'
import type { Database } from '../db/schema.js'
import { gateMemberMove, MoveGateBusy, moveMemberData } from './member-moves.js'
import { moveGrants } from './purchase-grants.js'

export type MpLinkResult =
  | { status: 'linked'; memberId: number; movedOrders: number; movedPoints: number }
  | { status: 'already_linked'; memberId: number }
  | { status: 'linked_elsewhere' }
  | { status: 'bad_code' }
  /** Builds kept taking the gate of an account the move found only under its locks: ask again. */
  | { status: 'busy' }

/** A 绑定's input. */
export interface MpLinkRequest {
  mpAppid: string
  openid: string
  code: string
  now: Date
  timeZone: string
  /** The badge notices' language (the community's locale); zh-CN without it. */
  t?: Translate
  /** How many times the transaction runs on a {@link MoveGateBusy} before `busy` (default 3). */
  attempts?: number
}

/**
 * The 绑定, in one transaction, run again on a {@link MoveGateBusy} (an account found only under
 * its locks whose gate a build holds) — `busy` after `attempts` runs: a contention, not a fault of
 * the request, which the caller answers with "try again" rather than an error.
 */
export async function linkMiniProgramUser(
  db: Kysely<Database>,
  r: MpLinkRequest,
): Promise<MpLinkResult> {
  const attempts = r.attempts ?? 3
  for (let attempt = 1; ; attempt++) {
    try {
      return await linkOnce(db, r)
    } catch (error) {
      if (!(error instanceof MoveGateBusy)) throw error
      if (attempt >= attempts) return { status: 'busy' }
    }
  }
}

/**
 * The gates of the move the link and the code read now (without a lock) would make, before
 * {@link linkOnce} locks any row; none when they make no move (an unknown user or code, a user
 * linked already): such a 绑定 answers without waiting for a build. Read again under the locks:
 * what changed in between is gated then, or the 绑定 runs again (member-moves.ts).
 */
async function gateLink(trx: Transaction<Database>, r: MpLinkRequest): Promise<Set<string>> {
  const user = await trx
    .selectFrom('mp_users')
    .innerJoin('members', 'members.id', 'mp_users.member_id')
    .select(['mp_users.member_id', 'members.appid'])
    .where('mp_users.appid', '=', r.mpAppid)
    .where('mp_users.openid', '=', r.openid)
    .executeTakeFirst()
  const code = await trx
    .selectFrom('binding_codes')
    .innerJoin('members', 'members.id', 'binding_codes.member_id')
    .select(['binding_codes.member_id', 'members.appid'])
    .where('binding_codes.code', '=', r.code)
    .where('binding_codes.used_at', 'is', null)
    .where('binding_codes.expires_at', '>', r.now)
    .executeTakeFirst()
  if (!user || !code || user.appid !== r.mpAppid || code.appid === r.mpAppid) return new Set()
  if (user.member_id === code.member_id) return new Set()
  return gateMemberMove(trx, user.member_id, code.appid)
}

async function linkOnce(db: Kysely<Database>, r: MpLinkRequest): Promise<MpLinkResult> {
  return db.transaction().execute(async (trx) => {
    // Before the first row lock (the lock order above).
    const gated = await gateLink(trx, r)
    const user = await trx
      .selectFrom('mp_users')
      .select('member_id')
      .where('appid', '=', r.mpAppid)
      .where('openid', '=', r.openid)
      .forUpdate()
      .executeTakeFirst()
    if (!user) return { status: 'bad_code' }
    const code = await trx
      .selectFrom('binding_codes')
      .innerJoin('members', 'members.id', 'binding_codes.member_id')
      .select(['binding_codes.member_id', 'members.appid'])
      .where('binding_codes.code', '=', r.code)
      .where('binding_codes.used_at', 'is', null)
      .where('binding_codes.expires_at', '>', r.now)
      // Only the code's row: members are locked below, in id order.
      .forUpdate(['binding_codes'])
      .executeTakeFirst()
    // Codes are issued in the OA chat: one held by a mini-program member is not a follower's.
    if (!code || code.appid === r.mpAppid) return { status: 'bad_code' }
    const target = code.member_id
    if (user.member_id === target) return { status: 'already_linked', memberId: target }
    const old = await trx
      .selectFrom('members')
      .select(['id', 'appid'])
      .where('id', '=', user.member_id)
      .executeTakeFirstOrThrow()
    if (old.appid !== r.mpAppid) return { status: 'linked_elsewhere' }
    await trx
      .updateTable('binding_codes')
      .set({ used_at: r.now })
      .where('code', '=', r.code)
      .execute()
    await trx
      .updateTable('mp_users')
      .set({ member_id: target })
      .where('appid', '=', r.mpAppid)
      .where('openid', '=', r.openid)
      .execute()

    // Both members locked in id order (the ledger locks them again, in the same order). `for
    // update`, not the `for no key update` of a check-in or an award (points-ledger.ts): the 绑定
    // moves rows keyed on them, so it must also exclude the inserts referencing them (their
    // foreign-key checks' `for key share`, points-ledger.ts `keyShareMember`).
    const locked = await trx
      .selectFrom('members')
      .select(['id', 'appid'])
      .where('id', 'in', [old.id, target])
      .orderBy('id')
      .forUpdate()
      .execute()
    const targetAppid = locked.find((m) => m.id === target)!.appid
    // Read under the lock: a payment landing meanwhile is counted, not lost.
    const counts = await trx
      .selectFrom('members')
      .select(['purchase_count', 'last_purchased_at'])
      .where('id', '=', old.id)
      .executeTakeFirstOrThrow()
    // A client key both used stays unique: the moved order's is prefixed.
    const moved = await sql`
      update orders o set member_id = ${target},
        client_key = case when exists (select 1 from orders t
            where t.member_id = ${target} and t.client_key = o.client_key)
          then 'm' || ${old.id}::text || ':' || o.client_key else o.client_key end
      where o.member_id = ${old.id}`.execute(trx)
    // The orders above before the groups here (the house lock order, orders.ts), as a failing
    // group buy takes them.
    await trx
      .updateTable('group_buys')
      .set({ leader_member_id: target })
      .where('leader_member_id', '=', old.id)
      .execute()
    const membership = await trx
      .deleteFrom('memberships')
      .where('member_id', '=', old.id)
      .returningAll()
      .executeTakeFirst()
    if (membership)
      await trx
        .insertInto('memberships')
        .values({ ...membership, member_id: target, updated_at: r.now })
        .onConflict((oc) =>
          oc.column('member_id').doUpdateSet({
            tier: sql`case when excluded.expires_at > memberships.expires_at
              then excluded.tier else memberships.tier end`,
            discount_percent: sql`case when excluded.expires_at > memberships.expires_at
              then excluded.discount_percent else memberships.discount_percent end`,
            expires_at: sql`greatest(excluded.expires_at, memberships.expires_at)`,
            updated_at: r.now,
          }),
        )
        .execute()
    await trx
      .updateTable('members')
      .set((eb) => ({
        purchase_count: eb('purchase_count', '+', counts.purchase_count),
        last_purchased_at: sql`greatest(last_purchased_at, ${counts.last_purchased_at}::timestamptz)`,
      }))
      .where('id', '=', target)
      .execute()
    await trx.updateTable('members').set({ purchase_count: 0 }).where('id', '=', old.id).execute()
    // Read under the lock: the release-points job may have released frozen points meanwhile.
    // The balance moves as no earnings; the lifetime follows with the grants (moveGrants).
    const { points_balance: points } = await trx
      .selectFrom('members')
      .select('points_balance')
      .where('id', '=', old.id)
      .executeTakeFirstOrThrow()
    if (points > 0) {
      const key = `mp-link:${old.id}:${target}`
      const base = {
        now: r.now,
        timeZone: r.timeZone,
        earned: false,
        reference: `member ${old.id}`,
      }
      const out = await changePoints(
        trx,
        { ...base, appid: old.appid, memberId: old.id, rule: 'mp_link_out', idempotencyKey: key },
        -points,
      )
      const into = await changePoints(
        trx,
        {
          ...base,
          appid: targetAppid,
          memberId: target,
          rule: 'mp_link_in',
          idempotencyKey: key,
        },
        points,
      )
      // Both entries or neither (the transaction rolls back): points are moved, never made.
      if (out.status !== 'applied' || into.status !== 'applied')
        throw new Error(`mp link: points not moved (${out.status} / ${into.status})`)
    }
    await moveGrants(trx, {
      fromMemberId: old.id,
      toMemberId: target,
      idempotencyKey: `mp-link:${old.id}:${target}:frozen`,
      lifetimeKey: `mp-link:${old.id}:${target}:lifetime`,
      reference: `member ${old.id}`,
      now: r.now,
      timeZone: r.timeZone,
    })
    // the purchases counted on the follower now may earn badges there (the notice as a payment's)
    if (counts.purchase_count > 0)
      await awardBadges(trx, target, { purchases: null }, { now: r.now, outbox: true, t: r.t })
    await moveMemberData(trx, {
      from: old.id,
      to: target,
      toAppid: targetAppid,
      now: r.now,
      timeZone: r.timeZone,
      gated,
    })
    return {
      status: 'linked',
      memberId: target,
      movedOrders: Number(moved.numAffectedRows ?? 0),
      movedPoints: points,
    }
  })
}
