/**
 * Community activities, defined as data (defaults from the reference plan: a daily check-in
 * reminder at 09:00, a weekly discussion topic worth 10 points, a weekly 好物分享 worth 15 points that
 * needs a verified purchase, a monthly 评选 worth 50). `报名 <activity>` signs a member up for the
 * current occurrence (day, week or month): confirmed while there is room, else waitlisted — the
 * activity row is locked while deciding, so the capacity holds under any concurrency; cancelling
 * promotes the first on the waitlist. Each activity's cron sends reminders through the outbox
 * (customer-service messages: only members inside the 48-hour window get them); operators award
 * the points for taking part through the ledger, once per member and occurrence.
 */
import type { Kysely } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import { cronMatches } from '../cron.js'
import type { Database } from '../db/schema.js'
import { localDay, weekStart } from './community-time.js'
import { announceToRobots, type GroupRobots } from './moderation.js'
import { notifyMember } from './notify.js'
import { changePoints } from './points-ledger.js'

export const DEFAULT_ACTIVITIES = [
  {
    key: 'checkin',
    name: '每日签到提醒',
    description: '每天 9 点提醒还没签到的朋友',
    cron: '0 9 * * *',
    cadence: 'daily' as const,
    points: 0,
    signup: false,
    capacity: null,
    requires_purchase: false,
  },
  {
    key: 'topic',
    name: '每周话题讨论',
    description: '每周三晚 8 点开聊，参与讨论得 10 积分',
    cron: '0 20 * * 3',
    cadence: 'weekly' as const,
    points: 10,
    signup: true,
    capacity: null,
    requires_purchase: false,
  },
  {
    key: 'share',
    name: '好物分享',
    description: '每周五分享你买到的好物，得 15 积分（需有购买记录）',
    cron: '0 20 * * 5',
    cadence: 'weekly' as const,
    points: 15,
    signup: true,
    capacity: 50,
    requires_purchase: true,
  },
  {
    key: 'contest',
    name: '月度评选',
    description: '每月 1 日开启评选，入选得 50 积分',
    cron: '0 10 1 * *',
    cadence: 'monthly' as const,
    points: 50,
    signup: true,
    capacity: 100,
    requires_purchase: false,
  },
]

/**
 * Seeds the default activities an account lacks, by key (safe to call concurrently). Operators
 * retire a default by closing it, so it is never seeded again.
 */
export async function ensureDefaultActivities(db: Kysely<Database>, appid: string, now: Date) {
  const have = await db
    .selectFrom('activities')
    .select('key')
    .where('appid', '=', appid)
    .where(
      'key',
      'in',
      DEFAULT_ACTIVITIES.map((a) => a.key),
    )
    .execute()
  if (have.length === DEFAULT_ACTIVITIES.length) return
  await db
    .insertInto('activities')
    .values(
      DEFAULT_ACTIVITIES.map((a) => ({ ...a, appid, status: 'open' as const, created_at: now })),
    )
    .onConflict((oc) => oc.columns(['appid', 'key']).doNothing())
    .execute()
}

/** The first community day of the occurrence containing `now`. */
export function periodOf(cadence: 'daily' | 'weekly' | 'monthly', now: Date, timeZone: string) {
  const day = localDay(now, timeZone)
  if (cadence === 'daily') return day
  if (cadence === 'weekly') return weekStart(day)
  return `${day.slice(0, 8)}01`
}

/** Finds an open activity by key or name. */
export async function findActivity(db: Kysely<Database>, appid: string, ref: string) {
  const wanted = ref.trim()
  return db
    .selectFrom('activities')
    .selectAll()
    .where('appid', '=', appid)
    .where((eb) => eb.or([eb('key', '=', wanted.toLowerCase()), eb('name', '=', wanted)]))
    .executeTakeFirst()
}

export type SignupResult =
  | { status: 'confirmed' | 'waitlisted' | 'already'; position?: number; name: string }
  | { status: 'not_found' | 'closed' | 'no_signup' | 'needs_purchase'; name?: string }

/** Signs a member up for the current occurrence of an activity. */
export async function signUp(
  db: Kysely<Database>,
  r: { appid: string; memberId: number; ref: string; now: Date; timeZone: string },
): Promise<SignupResult> {
  const activity = await findActivity(db, r.appid, r.ref)
  if (!activity) return { status: 'not_found' }
  const name = activity.name
  if (activity.status !== 'open') return { status: 'closed', name }
  if (!activity.signup) return { status: 'no_signup', name }
  if (activity.requires_purchase) {
    const m = await db
      .selectFrom('members')
      .select('purchase_count')
      .where('id', '=', r.memberId)
      .executeTakeFirstOrThrow()
    if (m.purchase_count === 0) return { status: 'needs_purchase', name }
  }
  const period = periodOf(activity.cadence, r.now, r.timeZone)
  return db.transaction().execute(async (trx) => {
    // The lock that makes the capacity hold: one decision at a time per activity.
    await trx
      .selectFrom('activities')
      .select('id')
      .where('id', '=', activity.id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const mine = await trx
      .selectFrom('activity_signups')
      .select('status')
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('member_id', '=', r.memberId)
      .executeTakeFirst()
    if (mine && mine.status !== 'cancelled') return { status: 'already' as const, name }
    const { n } = await trx
      .selectFrom('activity_signups')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('status', '=', 'confirmed')
      .executeTakeFirstOrThrow()
    const status =
      activity.capacity === null || Number(n) < activity.capacity ? 'confirmed' : 'waitlisted'
    await trx
      .insertInto('activity_signups')
      .values({
        activity_id: activity.id,
        period,
        member_id: r.memberId,
        status,
        created_at: r.now,
        updated_at: r.now,
      })
      .onConflict((oc) =>
        oc
          .columns(['activity_id', 'period', 'member_id'])
          .doUpdateSet({ status, created_at: r.now, updated_at: r.now }),
      )
      .execute()
    if (status === 'confirmed') return { status, name }
    const { ahead } = await trx
      .selectFrom('activity_signups')
      .select((eb) => eb.fn.countAll<number>().as('ahead'))
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('status', '=', 'waitlisted')
      .where('created_at', '<', r.now)
      .executeTakeFirstOrThrow()
    return { status, name, position: Number(ahead) + 1 }
  })
}

/** Cancels a sign-up; a freed confirmed place goes to the first on the waitlist. */
export async function cancelSignup(
  db: Kysely<Database>,
  r: { appid: string; memberId: number; ref: string; now: Date; timeZone: string },
): Promise<'cancelled' | 'not_signed_up' | 'not_found'> {
  const activity = await findActivity(db, r.appid, r.ref)
  if (!activity) return 'not_found'
  const period = periodOf(activity.cadence, r.now, r.timeZone)
  return db.transaction().execute(async (trx) => {
    await trx
      .selectFrom('activities')
      .select('id')
      .where('id', '=', activity.id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const gone = await trx
      .updateTable('activity_signups')
      .set({ status: 'cancelled', updated_at: r.now })
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('member_id', '=', r.memberId)
      .where('status', '!=', 'cancelled')
      .returning('status')
      .executeTakeFirst()
    if (!gone) return 'not_signed_up'
    const next = await trx
      .selectFrom('activity_signups')
      .select('member_id')
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('status', '=', 'waitlisted')
      .orderBy('created_at')
      .orderBy('member_id')
      .limit(1)
      .executeTakeFirst()
    if (next) {
      await trx
        .updateTable('activity_signups')
        .set({ status: 'confirmed', updated_at: r.now })
        .where('activity_id', '=', activity.id)
        .where('period', '=', period)
        .where('member_id', '=', next.member_id)
        .execute()
    }
    return 'cancelled'
  })
}

/**
 * Sends the reminders of every open activity whose cron matches `now`: to confirmed members of
 * the current occurrence, or — for the check-in reminder — to members who have not checked in
 * today and were active in the last two days. Through the outbox, once per member and slot.
 */
export async function sendActivityReminders(
  db: Kysely<Database>,
  o: { now: Date; timeZone: string; t: Translate; robots?: GroupRobots },
): Promise<number> {
  const minute = new Date(Math.floor(o.now.getTime() / 60_000) * 60_000)
  const activities = await db
    .selectFrom('activities')
    .selectAll()
    .where('status', '=', 'open')
    .execute()
  let queued = 0
  for (const a of activities.filter((x) => cronMatches(x.cron, minute, o.timeZone))) {
    const source = `activity:${a.id}:${minute.toISOString()}`
    const today = localDay(o.now, o.timeZone)
    const recipients = a.signup
      ? await db
          .selectFrom('activity_signups')
          .innerJoin('members', 'members.id', 'activity_signups.member_id')
          .select('members.openid')
          .where('activity_signups.activity_id', '=', a.id)
          .where('activity_signups.period', '=', periodOf(a.cadence, o.now, o.timeZone))
          .where('activity_signups.status', '=', 'confirmed')
          .execute()
      : await db
          .selectFrom('members')
          .select('openid')
          .where('appid', '=', a.appid)
          .where('subscribed', '=', true)
          .where('last_inbound_at', '>', new Date(o.now.getTime() - 2 * 86_400_000))
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('checkins')
                  .select('checkins.member_id')
                  .whereRef('checkins.member_id', '=', 'members.id')
                  .where('checkins.day', '=', today),
              ),
            ),
          )
          .execute()
    // Announced in the internal groups too (their robots; the 20-a-minute limit applies).
    if (o.robots && Object.keys(o.robots.keys).length > 0) {
      const result = await announceToRobots(db, o.robots, {
        text: o.t('activity.reminder', { name: a.name, description: a.description }),
        now: o.now,
      })
      queued += result.filter((r) => r.status === 'sent').length
    }
    for (const r of recipients) {
      const added = await notifyMember(db, {
        appid: a.appid,
        openid: r.openid,
        source,
        text: o.t('activity.reminder', { name: a.name, description: a.description }),
        now: o.now,
      })
      if (added) queued++
    }
  }
  return queued
}

/** Awards an activity's points to members who took part in an occurrence, once each. */
export async function awardParticipants(
  db: Kysely<Database>,
  r: {
    appid: string
    key: string
    period: string
    memberIds: number[]
    now: Date
    timeZone: string
  },
) {
  const activity = await findActivity(db, r.appid, r.key)
  if (!activity) return null
  const results: { memberId: number; status: string }[] = []
  if (activity.points === 0) return results
  for (const memberId of r.memberIds) {
    const outcome = await changePoints(
      db,
      {
        appid: r.appid,
        memberId,
        rule: `activity_${activity.key}`,
        idempotencyKey: `activity:${activity.id}:${r.period}:${memberId}`,
        reference: `${activity.name} ${r.period}`,
        now: r.now,
        timeZone: r.timeZone,
      },
      activity.points,
    )
    results.push({ memberId, status: outcome.status })
  }
  return results
}
