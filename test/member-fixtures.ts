/** A small family of members for the console's 会员 pages: an inviter, the member, an invitee. */
import type { Kysely } from 'kysely'
import { addDays, localDay } from '../src/community/community-time.js'
import type { Database } from '../src/db/schema.js'

/** What the fixture seeded: the member's openid and a redemption code they could quote. */
export interface MemberFamily {
  inviter: string
  openid: string
  invitee: string
  redemptionCode: string
  inviteCode: string
}

/**
 * Seeds, under `prefix`: the inviter, the member (display name `小明<prefix>`, 300 points, 5
 * check-ins ending yesterday, an issued redemption, an invite code) and an invitee of the member.
 */
export async function seedMemberFamily(
  db: Kysely<Database>,
  appid: string,
  prefix: string,
  now: Date,
): Promise<MemberFamily> {
  const openids = ['up', 'me', 'down'].map((x) => `o${prefix}_${x}_0123456789abcdef`)
  const ids: number[] = []
  for (const [i, openid] of openids.entries()) {
    const row = await db
      .insertInto('members')
      .values({
        appid,
        openid,
        first_seen_at: now,
        subscribed: true,
        subscribed_at: now,
        display_name: i === 1 ? `小明${prefix}` : null,
        points_balance: i === 1 ? 300 : 0,
        points_lifetime: i === 1 ? 300 : 0,
        last_inbound_at: i === 1 ? now : null,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    ids.push(row.id)
  }
  const [up, me, down] = ids as [number, number, number]
  await db
    .insertInto('invites')
    .values([
      {
        appid,
        invitee_key: `k${prefix}me`,
        invitee_member_id: me,
        inviter_member_id: up,
        source: 'oa_qr',
        scene: null,
        status: 'qualified',
        created_at: now,
        qualified_at: now,
      },
      {
        appid,
        invitee_key: `k${prefix}down`,
        invitee_member_id: down,
        inviter_member_id: me,
        source: 'oa_qr',
        scene: null,
        status: 'pending',
        created_at: now,
        qualified_at: null,
      },
    ])
    .execute()
  const inviteCode = `INV${prefix}`.toUpperCase()
  await db
    .insertInto('invite_codes')
    .values({ member_id: me, appid, code: inviteCode, created_at: now })
    .execute()
  const reward = await db
    .insertInto('rewards')
    .values({
      appid,
      code: ([...prefix].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) % 1_000_000) + 1,
      name: '杯子',
      cost: 100,
      stock: null,
      per_member_limit: null,
      created_at: now,
      cashback_fen: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const redemptionCode = `RDM${prefix}X7`.toUpperCase()
  await db
    .insertInto('redemptions')
    .values({
      appid,
      member_id: me,
      reward_id: reward.id,
      cost: 100,
      code: redemptionCode,
      status: 'issued',
      created_at: now,
      cancelled_at: null,
    })
    .execute()
  const today = localDay(now, 'Asia/Shanghai')
  await db
    .insertInto('checkins')
    .values(
      [5, 4, 3, 2, 1].map((back, i) => ({
        member_id: me,
        appid,
        day: addDays(today, -back),
        streak: i + 1,
        points: 10,
        created_at: now,
      })),
    )
    .execute()
  return {
    inviter: openids[0]!,
    openid: openids[1]!,
    invitee: openids[2]!,
    redemptionCode,
    inviteCode,
  }
}

/** A member's cached points balance. */
export async function pointsBalance(db: Kysely<Database>, memberId: number): Promise<number> {
  const row = await db
    .selectFrom('members')
    .select('points_balance')
    .where('id', '=', memberId)
    .executeTakeFirstOrThrow()
  return row.points_balance
}
