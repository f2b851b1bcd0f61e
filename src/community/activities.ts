/**
 * Community activities, defined as data (defaults from the reference plan: a daily check-in
 * reminder at 09:00, a weekly discussion topic worth 10 points, a weekly 好物分享 worth 15 points that
 * needs a verified purchase, a monthly 评选 worth 50). `报名 <activity>` signs a member up for the
 * current occurrence (day, week or month): confirmed while there is room, else waitlisted — the
 * activity row is locked while deciding, so the capacity holds under any concurrency; cancelling a
 * confirmed place promotes the first on the waitlist (cancelling a waitlisted one frees nothing).
 * Each activity's cron sends reminders through the outbox (customer-service messages: only members
 * inside the 48-hour window get them, and never later than a check-in reminder would go) — the
 * occurrence's first slot also invites those who can still sign up; an activity without sign-ups
 * is a check-in reminder, obeying the same choices as a member's own (提醒 / 取消提醒). Operators
 * award the points for taking part through the ledger, once per member and occurrence (any day of
 * it names it).
 */
import { type Kysely, type Selectable, sql } from 'kysely'
import { type Translate, translator } from '../bot/i18n.js'
import { cronMatches } from '../cron.js'
import type { ActivitiesTable, Database, OutboxLane } from '../db/schema.js'
import { awardBadges } from './badges.js'
import {
  DEFAULT_REMINDER_SETTINGS,
  type ReminderSettings,
  reminderDeadline,
  reminderSource,
} from './checkin-reminders.js'
import { localDay, weekStart } from './community-time.js'
import { levelByKey } from './levels.js'
import { announceToRobots, type GroupRobots } from './moderation.js'
import { notifyMember } from './notify.js'
import { LANE } from './outbox.js'
import { changePoints } from './points-ledger.js'

/** The customer-service window: members who wrote within it can be sent messages. */
const SERVICE_WINDOW_MS = 48 * 3_600_000

/**
 * The defaults an account is seeded with. A description names an activity's points as the base
 * (基础) the level multiplier is applied to — a gold member gets 3× ({@link awardParticipants}) —
 * never as the figure every member gets; the 活动 list adds each member's own figure.
 */
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
    description: '每周三晚 8 点开聊，参与讨论得积分（基础 10 分，乘你的等级倍数）',
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
    description: '每周五分享你买到的好物，得积分（基础 15 分，乘你的等级倍数；需有购买记录）',
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
    description: '每月 1 日开启评选，入选得积分（基础 50 分，乘你的等级倍数）',
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

type Cadence = 'daily' | 'weekly' | 'monthly'

/** The first community day of the occurrence containing `now`. */
export function periodOf(cadence: Cadence, now: Date, timeZone: string) {
  return occurrenceOf(cadence, localDay(now, timeZone))
}

/**
 * The first day of the occurrence containing `day` (`YYYY-MM-DD`): the day itself, its week's
 * Monday or its month's 1st. Throws a RangeError for anything but a calendar date that exists.
 * @example occurrenceOf('weekly', '2026-11-27') // '2026-11-23'
 */
export function occurrenceOf(cadence: Cadence, day: string) {
  if (!isCalendarDay(day))
    throw new RangeError('period: must be a calendar date YYYY-MM-DD (such as 2026-11-23)')
  if (cadence === 'daily') return day
  if (cadence === 'weekly') return weekStart(day)
  return `${day.slice(0, 8)}01`
}

function isCalendarDay(s: string) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false
  const [y, m, d] = s.split('-').map(Number) as [number, number, number]
  const date = new Date(Date.UTC(y, m - 1, d))
  return y >= 1970 && date.getUTCMonth() === m - 1 && date.getUTCDate() === d
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
    // The decisions' order is the lock's: `created_at` (what the waitlist is promoted by) is this
    // process's clock, but at least a millisecond after every earlier sign-up of the occurrence —
    // instances' clocks differ, and racing sign-ups took `now` before the lock.
    const signedUpAt = sql<Date>`greatest(${r.now}::timestamptz, (select max(s.created_at)
      + interval '1 millisecond' from activity_signups s
      where s.activity_id = ${activity.id} and s.period = ${period}))`
    await trx
      .insertInto('activity_signups')
      .values({
        activity_id: activity.id,
        period,
        member_id: r.memberId,
        status,
        created_at: signedUpAt,
        updated_at: r.now,
      })
      .onConflict((oc) =>
        oc.columns(['activity_id', 'period', 'member_id']).doUpdateSet((eb) => ({
          status,
          created_at: eb.ref('excluded.created_at'),
          updated_at: r.now,
        })),
      )
      .execute()
    if (status === 'confirmed') return { status, name }
    // Every earlier decision is committed (the lock) and signed up before this one: the waitlist,
    // this sign-up last, is the promotion order.
    const { waiting } = await trx
      .selectFrom('activity_signups')
      .select((eb) => eb.fn.countAll<number>().as('waiting'))
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('status', '=', 'waitlisted')
      .executeTakeFirstOrThrow()
    return { status, name, position: Number(waiting) }
  })
}

/**
 * Cancels a sign-up. Only a freed confirmed place moves the waitlist: its first members are
 * confirmed while there is room (one, unless the capacity was raised meanwhile), and each is told
 * so (the waitlist reply promised it) through the outbox in the same transaction — once per
 * sign-up: the notice's source names the sign-up (activity, occurrence, member and when they
 * signed up). Cancelling a waitlisted sign-up frees no place and promotes no one.
 */
export async function cancelSignup(
  db: Kysely<Database>,
  r: {
    appid: string
    memberId: number
    ref: string
    now: Date
    timeZone: string
    /** The language of the promoted members' notice; default zh-CN. */
    t?: Translate
  },
): Promise<'cancelled' | 'not_signed_up' | 'not_found'> {
  const activity = await findActivity(db, r.appid, r.ref)
  if (!activity) return 'not_found'
  const period = periodOf(activity.cadence, r.now, r.timeZone)
  return db.transaction().execute(async (trx) => {
    // Every sign-up decision of the activity holds this lock, so the counts below stay true.
    const { capacity } = await trx
      .selectFrom('activities')
      .select('capacity')
      .where('id', '=', activity.id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const mine = trx
      .selectFrom('activity_signups')
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
    // (`update … returning` gives the new status: read the one being cancelled first.)
    const before = await mine
      .select('status')
      .where('member_id', '=', r.memberId)
      .where('status', '!=', 'cancelled')
      .executeTakeFirst()
    if (!before) return 'not_signed_up'
    await trx
      .updateTable('activity_signups')
      .set({ status: 'cancelled', updated_at: r.now })
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where('member_id', '=', r.memberId)
      .execute()
    if (before.status !== 'confirmed') return 'cancelled'
    // Room left: none when the capacity was lowered below the confirmed count; unlimited when the
    // operator removed the capacity (the whole waitlist moves up).
    let room: number | null = null
    if (capacity !== null) {
      const { n } = await mine
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'confirmed')
        .executeTakeFirstOrThrow()
      room = capacity - Number(n)
      if (room <= 0) return 'cancelled'
    }
    const next = await mine
      .innerJoin('members', 'members.id', 'activity_signups.member_id')
      .select([
        'activity_signups.member_id',
        'activity_signups.created_at',
        'members.appid',
        'members.openid',
      ])
      .where('activity_signups.status', '=', 'waitlisted')
      .orderBy('activity_signups.created_at')
      .orderBy('activity_signups.member_id')
      .$if(room !== null, (q) => q.limit(room!))
      .execute()
    if (next.length === 0) return 'cancelled'
    await trx
      .updateTable('activity_signups')
      .set({ status: 'confirmed', updated_at: r.now })
      .where('activity_id', '=', activity.id)
      .where('period', '=', period)
      .where(
        'member_id',
        'in',
        next.map((x) => x.member_id),
      )
      .execute()
    const t = r.t ?? translator('zh-CN')
    for (const m of next)
      await notifyMember(trx, {
        appid: m.appid,
        openid: m.openid,
        source: `activity-promoted:${activity.id}:${period}:${m.member_id}:${new Date(m.created_at).toISOString()}`,
        text: t('activity.promoted', { name: activity.name }),
        now: r.now,
      })
    return 'cancelled'
  })
}

/**
 * Whether `minute` is the first slot of `cron` in its occurrence: no earlier minute since the
 * occurrence began matches. `minute` matches, and a cron's day fields do not depend on the time of
 * day nor its minute and hour fields on the day, so an earlier match exists exactly when one
 * matches among: the same time on each earlier day of the occurrence, each earlier hour of today
 * at the same minute, and the 59 minutes before (≤ 112 checks; the steps are whole hours and days,
 * exact except across a daylight-saving change).
 */
export function isOpeningSlot(cron: string, cadence: Cadence, minute: Date, timeZone: string) {
  const start = periodOf(cadence, minute, timeZone)
  const matchesEarlier = (step: number, count: number) => {
    for (let k = 1; k <= count; k++) {
      const at = new Date(minute.getTime() - k * step)
      if (localDay(at, timeZone) < start) return false
      if (cronMatches(cron, at, timeZone)) return true
    }
    return false
  }
  return !(
    matchesEarlier(60_000, 59) ||
    matchesEarlier(3_600_000, 23) ||
    matchesEarlier(86_400_000, 30)
  )
}

/**
 * Sends the reminders of every open activity whose cron matches `slot`, through the outbox, once
 * per member and slot:
 *
 * - an activity with sign-ups reminds the members confirmed for the current occurrence; its
 *   occurrence's first slot ({@link isOpeningSlot} — for the monthly 评选 on the 1st, nobody has
 *   signed up yet) also invites who can still sign up: followers inside the 48-hour window who
 *   have not opted out of marketing (`退订`), have no sign-up for this occurrence (a cancelled one
 *   counts: they chose) and, when it needs one, a purchase on record;
 * - an activity without sign-ups (the default 09:00 每日签到提醒) is a check-in reminder
 *   ({@link checkinLaggards}): at most one a day together with the members' own (提醒), since both
 *   take the same outbox source (`checkin-reminder:<day>`), whose key is unique per member.
 *
 * Like a check-in reminder, nothing of a slot goes out after its deadline ({@link reminderDeadline}:
 * 2 h after it, the start of the quiet hours or the end of its community day): a slot run later
 * (caught up after downtime) sends nothing — the next slot reminds instead of a stale copy of it —
 * and each item carries the deadline (`expires_at`), so one still queued then is stored expired.
 */
export async function sendActivityReminders(
  db: Kysely<Database>,
  o: {
    /** The slot being run: a caught-up one is in the past. */
    slot: Date
    /** The time now, when it is not the slot (a late run). */
    now?: Date
    timeZone: string
    t: Translate
    robots?: GroupRobots
    /** The check-in reminders' settings: their quiet hours bound the deadline. */
    settings?: ReminderSettings
  },
): Promise<number> {
  const minute = new Date(Math.floor(o.slot.getTime() / 60_000) * 60_000)
  const now = o.now ?? o.slot
  const deadline = reminderDeadline(minute, o.settings ?? DEFAULT_REMINDER_SETTINGS, o.timeZone)
  if (now >= deadline) return 0
  const activities = await db
    .selectFrom('activities')
    .selectAll()
    .where('status', '=', 'open')
    .execute()
  let queued = 0
  for (const a of activities.filter((x) => cronMatches(x.cron, minute, o.timeZone))) {
    const source = `activity:${a.id}:${minute.toISOString()}`
    const names = { name: a.name, description: a.description }
    const reminder = o.t('activity.reminder', names)
    const recipients: Recipient[] = a.signup
      ? await signupRecipients(db, a, minute, now, {
          opening: isOpeningSlot(a.cron, a.cadence, minute, o.timeZone),
          source,
          reminder,
          invitation: o.t('activity.invitation', { ...names, key: a.key }),
          timeZone: o.timeZone,
        })
      : await checkinLaggards(db, a.appid, minute, now, {
          text: o.t('activity.checkinReminder', names),
          timeZone: o.timeZone,
        })
    // Announced in the internal groups too (their robots; the 20-a-minute limit applies), once per
    // slot: a retried run of the slot (jobs/runner.ts) finds each group's post in robot_posts.
    if (o.robots && Object.keys(o.robots.keys).length > 0) {
      const result = await announceToRobots(db, o.robots, { text: reminder, now, source })
      queued += result.filter((r) => r.status === 'sent').length
    }
    for (const r of recipients) {
      const added = await notifyMember(db, {
        ...r,
        appid: a.appid,
        now,
        expiresAt: deadline,
      })
      if (added) queued++
    }
  }
  return queued
}

/** One member's reminder or invitation of a slot. */
interface Recipient {
  openid: string
  source: string
  text: string
  /** Marketing (what the member did not ask for) goes in the campaign lane: 退订 withdraws it. */
  lane: OutboxLane
}

/** Confirmed sign-ups of the current occurrence, and on its opening slot who may still sign up. */
async function signupRecipients(
  db: Kysely<Database>,
  a: Selectable<ActivitiesTable>,
  slot: Date,
  now: Date,
  o: { opening: boolean; source: string; reminder: string; invitation: string; timeZone: string },
): Promise<Recipient[]> {
  const period = periodOf(a.cadence, slot, o.timeZone)
  const confirmed = await db
    .selectFrom('activity_signups')
    .innerJoin('members', 'members.id', 'activity_signups.member_id')
    .select('members.openid')
    .where('activity_signups.activity_id', '=', a.id)
    .where('activity_signups.period', '=', period)
    .where('activity_signups.status', '=', 'confirmed')
    .execute()
  const invited = o.opening
    ? await db
        .selectFrom('members')
        .select('openid')
        .where('appid', '=', a.appid)
        .where('subscribed', '=', true)
        .where('marketing_opt_out', '=', false)
        .where('last_inbound_at', '>', new Date(now.getTime() - SERVICE_WINDOW_MS))
        .$if(a.requires_purchase, (q) => q.where('purchase_count', '>', 0))
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('activity_signups')
                .select('activity_signups.member_id')
                .whereRef('activity_signups.member_id', '=', 'members.id')
                .where('activity_signups.activity_id', '=', a.id)
                .where('activity_signups.period', '=', period),
            ),
          ),
        )
        .execute()
    : []
  return [
    ...confirmed.map((r) => ({
      openid: r.openid,
      source: o.source,
      text: o.reminder,
      lane: LANE.notice,
    })),
    ...invited.map((r) => ({
      openid: r.openid,
      source: o.source,
      text: o.invitation,
      lane: LANE.campaign,
    })),
  ]
}

/**
 * Who an activity's check-in reminder goes to: followers inside the 48-hour window who have not
 * checked in on the slot's day, whose own check-in reminder is not on — one that is covers the day
 * by itself (at its time) — and who did not turn reminders off (取消提醒: `cancelled`, which
 * cancelReminder records even for a member who never turned one on). A reminder that is off
 * without that choice (an accepted template whose time was refused for quiet hours) does not keep
 * this one away. Nobody asked for this one, so it is marketing: not to those who opted out (退订),
 * in the campaign lane, and it names the opt-out word 取消提醒.
 */
async function checkinLaggards(
  db: Kysely<Database>,
  appid: string,
  slot: Date,
  now: Date,
  o: { text: string; timeZone: string },
): Promise<Recipient[]> {
  const day = localDay(slot, o.timeZone)
  const rows = await db
    .selectFrom('members')
    .select('openid')
    .where('appid', '=', appid)
    .where('subscribed', '=', true)
    .where('marketing_opt_out', '=', false)
    .where('last_inbound_at', '>', new Date(now.getTime() - SERVICE_WINDOW_MS))
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('checkins')
            .select('checkins.member_id')
            .whereRef('checkins.member_id', '=', 'members.id')
            .where('checkins.day', '=', day),
        ),
      ),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('checkin_reminders')
            .select('checkin_reminders.member_id')
            .whereRef('checkin_reminders.member_id', '=', 'members.id')
            .where((eb) =>
              eb.or([
                eb('checkin_reminders.enabled', '=', true),
                eb('checkin_reminders.cancelled', '=', true),
              ]),
            ),
        ),
      ),
    )
    .execute()
  const source = reminderSource(day)
  return rows.map((r) => ({ openid: r.openid, source, text: o.text, lane: LANE.campaign }))
}

/**
 * Awards an activity's points × each member's level multiplier (as a check-in's: the level perks
 * say 签到与活动积分 N 倍) to members who took part in an occurrence, once each (`points` in each
 * result: what the member got, 0 when not applied). `period` may
 * be any day of the occurrence: it is normalised to the occurrence's first day before the
 * once-per-member-and-occurrence key is made (a RangeError, and nothing awarded, for a malformed
 * date). Null when there is no such activity.
 */
export async function awardParticipants(
  db: Kysely<Database>,
  r: {
    appid: string
    key: string
    period: string
    memberIds: number[]
    now: Date
    timeZone: string
    /** The language of the members' notices (a new badge); default zh-CN. */
    t?: Translate
  },
) {
  const activity = await findActivity(db, r.appid, r.key)
  if (!activity) return null
  const period = occurrenceOf(activity.cadence, r.period)
  const results: { memberId: number; status: string; points: number }[] = []
  if (activity.points === 0) return results
  for (const memberId of r.memberIds) {
    // × the member's level multiplier, as a check-in's points (签到与活动积分 N 倍)
    const member = await db
      .selectFrom('members')
      .select('level')
      .where('id', '=', memberId)
      .executeTakeFirst()
    const points = activity.points * levelByKey(member?.level ?? 'bronze').multiplier
    const outcome = await changePoints(
      db,
      {
        appid: r.appid,
        memberId,
        rule: `activity_${activity.key}`,
        idempotencyKey: `activity:${activity.id}:${period}:${memberId}`,
        reference: `${activity.name} ${period}`,
        now: r.now,
        timeZone: r.timeZone,
      },
      points,
    )
    if (outcome.status === 'applied')
      await awardBadges(db, memberId, { activity_awards: null }, { ...r, outbox: true })
    results.push({
      memberId,
      status: outcome.status,
      points: outcome.status === 'applied' ? outcome.delta : 0,
    })
  }
  return results
}
