/**
 * Check-in reminders (提醒): a member opts in — `提醒` / `提醒 20:30` in the chat, or by accepting the
 * reminder's subscribe-message template (订阅通知) in the OA or the mini program — and at the chosen
 * time (default 20:00 community time) gets one reminder if they have not checked in that day:
 *
 *   customer-service message   inside the 48 h window and under its quota (5 per member message)
 *   subscribe message          else, through an OA authorisation they gave (one send per accept)
 *   mini-program subscribe     else, through a mini-program authorisation (one send per accept),
 *                              sent with the mini program's token to its openid
 *   nothing                    else
 *
 * never inside quiet hours, never more than 2 h late (the outbox item carries that deadline: see
 * {@link reminderDeadline}), at most once per community day — an activity's check-in reminder (the
 * 09:00 每日签到提醒) counts, both taking the day's outbox source ({@link reminderSource}) — with the
 * opt-out word (取消提醒) in it. 取消提醒 also stops the activity's reminder, which skips members
 * whose own reminder is on and members who chose off (`cancelled`: {@link cancelReminder} records
 * it for a member who never set one too) — not a member whose reminder is merely off.
 * The `checkin-reminders` job decides due members in batches of one statement each
 * ({@link enqueueCheckinReminders}): due rows are taken with `FOR UPDATE SKIP LOCKED` and their
 * `next_at` moved to the next day in the same statement, so parallel job instances never decide a
 * member twice; the reminders go into the outbox's notice lane (unique per member and day). A
 * one-time authorisation is consumed in that same statement (its credit taken as the item is
 * enqueued), so it is used exactly once however many instances run. A reminder still unsent at
 * its deadline (queued, or claimed by a dispatcher that died before sending it) is stored expired
 * by the same job, its credit given back then ({@link expireReminders}).
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Budget } from '../budget.js'
import { inParallel, keyedJoins } from '../db/keyed-joins.js'
import type { Database } from '../db/schema.js'
import {
  localDay,
  localDayStart,
  nextLocalMidnight,
  type QuietHours,
  quietHoursEnd,
  quietHoursStart,
} from './community-time.js'
import { messageWindowOpen } from './cs-window.js'
import { LANE } from './outbox.js'
import { expireItems } from './outbox-expiry.js'
import { keyShareMember } from './points-ledger.js'

/** Reminder settings (from configuration). */
export interface ReminderSettings {
  /** The time `提醒` without a time (and an authorisation) chooses, in community minutes. */
  defaultMinute: number
  /** No reminder goes out inside them, and no time inside them can be chosen. */
  quietHours: QuietHours | null
  /**
   * The OA subscribe-message template reminders go through outside the 48 h window, and the two
   * keys of its data that carry the title and the hint (both `thing` values: ≤ 20 characters).
   */
  subscribe?: { templateId: string; titleKey: string; hintKey: string }
  /** The mini program's reminder template, which `POST /api/mp/reminders` accepts. */
  mpTemplateId?: string
  /**
   * How reminders go through the mini program's template: its title and hint keys (`thing`
   * values) and the page it opens. Absent: the mini-program authorisation is recorded, not used.
   */
  mpSubscribe?: { titleKey: string; hintKey: string; page?: string }
}

/** 20:00, quiet hours 22:00–08:00, no subscribe-message templates. */
export const DEFAULT_REMINDER_SETTINGS: ReminderSettings = {
  defaultMinute: 20 * 60,
  quietHours: { from: 22 * 60, to: 8 * 60 },
}

/** A reminder later than this after its time is not sent (the job was down): it waits a day. */
export const REMINDER_LATE_MS = 2 * 3600_000

/**
 * The last moment a reminder due at `slot` may go out: {@link REMINDER_LATE_MS} after it, or the
 * start of the quiet hours, or the end of the community day, whichever comes first. Stored with
 * its outbox item (`expires_at`): the notice lane is never held by quiet hours, and a 45009
 * releases the items it paused at midnight, so a reminder held that long — or pushed late by a
 * retry's back-off — is stored skipped (expired) instead, its credit given back: by the job's next
 * run ({@link expireReminders}), or by a dispatcher claiming it first.
 */
export function reminderDeadline(slot: Date, s: ReminderSettings, timeZone: string): Date {
  return new Date(
    Math.min(
      slot.getTime() + REMINDER_LATE_MS,
      quietHoursStart(slot, s.quietHours, timeZone)?.getTime() ?? Infinity,
      nextLocalMidnight(slot, timeZone).getTime(),
    ),
  )
}

/**
 * The outbox source of a day's check-in reminders — a member's own and an activity's (the 09:00
 * 每日签到提醒, activities.ts) alike: the outbox's unique (appid, source, openid) makes it at most
 * one a day, whichever comes first.
 */
export const reminderSource = (day: string) => `checkin-reminder:${day}`

/** `HH:MM` of community minutes. */
export const formatMinutes = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`

/**
 * Reads a time of day: `20:30`, `8:05`, `20：30` (full-width colon), `20` or `20点`; null otherwise.
 * @example parseReminderTime('20:30') // 1230
 */
export function parseReminderTime(text: string): number | null {
  const m = /^(\d{1,2})(?:[:：](\d{2})|点|點)?$/.exec(text.trim())
  if (!m) return null
  const hour = Number(m[1])
  const minute = m[2] === undefined ? 0 : Number(m[2])
  if (hour > 23 || minute > 59) return null
  return hour * 60 + minute
}

/** True when `minute` of the community day falls inside the quiet hours. */
export function inQuietHours(minute: number, s: ReminderSettings, timeZone: string): boolean {
  // Any day will do: quiet hours are the same every day.
  const at = new Date(localDayStart('2026-01-05', timeZone).getTime() + minute * 60_000)
  return quietHoursEnd(at, s.quietHours, timeZone) !== null
}

/**
 * The first instant after `after` at `minute` community time: today's if still ahead, else
 * tomorrow's. SQL, so the job and the opt-in compute it the same way.
 */
function occurrenceAfter(after: Date, minute: RawBuilder<number> | number, timeZone: string) {
  const today = localDay(after, timeZone)
  const at = (days: number) =>
    sql`((${today}::date + ${days}::integer) + ${minute}::integer * interval '1 minute')
      at time zone ${timeZone}`
  return sql<Date>`case when ${at(0)} > ${after}::timestamptz then ${at(0)} else ${at(1)} end`
}

/** A member's reminder as they see it. */
export interface ReminderState {
  enabled: boolean
  minute: number
}

/** What `提醒` did. */
export type SetReminderResult =
  | { status: 'on'; minute: number }
  /** The time falls inside quiet hours: nothing changed. */
  | { status: 'quiet'; quietHours: QuietHours }

/**
 * Turns a member's reminder on at `minute` (or the time they chose before, or the default). The
 * first reminder is the next occurrence after `now`. In one transaction (the caller's, or its
 * own) with the member's row held first, as {@link recordAuthorisation} does: a 绑定 moving a mini
 * program's reminder onto the member comes entirely before or after (points-ledger.ts
 * `keyShareMember`).
 * @example await setReminder(db, { appid, memberId, minute: 1230, now, timeZone, settings })
 */
export async function setReminder(
  db: Kysely<Database>,
  r: {
    appid: string
    memberId: number
    minute?: number
    now: Date
    timeZone: string
    settings: ReminderSettings
  },
): Promise<SetReminderResult> {
  if (!db.isTransaction) return db.transaction().execute((trx) => setReminder(trx, r))
  await keyShareMember(db, r.memberId)
  const current = await reminderOf(db, r.memberId)
  const minute = r.minute ?? current?.minute ?? r.settings.defaultMinute
  if (r.settings.quietHours && inQuietHours(minute, r.settings, r.timeZone))
    return { status: 'quiet', quietHours: r.settings.quietHours }
  const next = occurrenceAfter(r.now, minute, r.timeZone)
  await db
    .insertInto('checkin_reminders')
    .values({
      member_id: r.memberId,
      appid: r.appid,
      minute_of_day: minute,
      next_at: next,
      created_at: r.now,
      updated_at: r.now,
    })
    .onConflict((oc) =>
      oc.column('member_id').doUpdateSet({
        enabled: true,
        cancelled: false,
        minute_of_day: minute,
        next_at: next,
        updated_at: r.now,
      }),
    )
    .execute()
  return { status: 'on', minute }
}

/**
 * Turns a member's check-in reminders off by their choice (`cancelled`); false when they had
 * chosen so already. The community's own check-in reminder (an activity's, activities.ts) skips
 * members who chose off, so the choice is kept whether their reminder was on, off without a
 * choice (an accept refused for quiet hours: {@link recordAuthorisation}), or never set — then as
 * a row that is off (at `defaultMinute`, what `提醒` would choose). Authorisations are kept.
 */
export async function cancelReminder(
  db: Kysely<Database>,
  memberId: number,
  now: Date,
  defaultMinute = DEFAULT_REMINDER_SETTINGS.defaultMinute,
): Promise<boolean> {
  const row = await db
    .insertInto('checkin_reminders')
    .columns([
      'member_id',
      'appid',
      'enabled',
      'cancelled',
      'minute_of_day',
      'next_at',
      'created_at',
      'updated_at',
    ])
    .expression((eb) =>
      eb
        .selectFrom('members')
        .select([
          'id',
          'appid',
          sql<boolean>`false`.as('enabled'),
          sql<boolean>`true`.as('cancelled'),
          sql<number>`${defaultMinute}::smallint`.as('minute_of_day'),
          sql<Date>`${now}::timestamptz`.as('next_at'),
          sql<Date>`${now}::timestamptz`.as('created_at'),
          sql<Date>`${now}::timestamptz`.as('updated_at'),
        ])
        .where('id', '=', memberId),
    )
    .onConflict((oc) =>
      oc
        .column('member_id')
        .doUpdateSet({ enabled: false, cancelled: true, updated_at: now })
        .where((eb) =>
          eb.or([
            eb('checkin_reminders.enabled', '=', true),
            eb('checkin_reminders.cancelled', '=', false),
          ]),
        ),
    )
    .returning('member_id')
    .executeTakeFirst()
  return row !== undefined
}

/** The member's reminder, if they ever set one. */
export async function reminderOf(
  db: Kysely<Database>,
  memberId: number,
): Promise<ReminderState | undefined> {
  const row = await db
    .selectFrom('checkin_reminders')
    .select(['enabled', 'minute_of_day'])
    .where('member_id', '=', memberId)
    .executeTakeFirst()
  return row && { enabled: row.enabled, minute: row.minute_of_day }
}

/** Where a subscribe-message authorisation was given. */
export type AuthorisationSource = { app: 'oa' } | { app: 'mp'; openid: string }

/**
 * Records an accepted reminder template (one more one-time send) and turns the reminder on — at the
 * time chosen before, or the default. Accepting another template than the configured one's replaces
 * it (the credits counted for the old one are dropped). A mini-program grant records its time
 * (`mp_granted_at`): a refusal of an item enqueued before it leaves its credit alone.
 *
 * `turnOn: false` records the send only, leaving the reminder as it was (off, or on at its time;
 * a member without one gets it off at the default time — not `cancelled`: they did not choose off,
 * so the community's 09:00 reminder still comes): the accept came with a time refused for quiet
 * hours, and the credit the member granted is kept for when they choose another. Turning it on
 * clears a 取消提醒 (`cancelled`).
 *
 * In one transaction (the caller's, or its own) with the member's row held first (see
 * {@link setReminder}).
 */
export async function recordAuthorisation(
  db: Kysely<Database>,
  a: {
    appid: string
    memberId: number
    source: AuthorisationSource
    templateId: string
    now: Date
    timeZone: string
    settings: ReminderSettings
    /** Default true; false: only the credit (see above). */
    turnOn?: boolean
  },
): Promise<void> {
  if (!db.isTransaction) return db.transaction().execute((trx) => recordAuthorisation(trx, a))
  await keyShareMember(db, a.memberId)
  const turnOn = a.turnOn ?? true
  const current = await reminderOf(db, a.memberId)
  const minute = current?.minute ?? a.settings.defaultMinute
  const next = occurrenceAfter(a.now, sql<number>`checkin_reminders.minute_of_day`, a.timeZone)
  const credits = (
    column: 'oa_credits' | 'mp_credits',
    template: 'oa_template_id' | 'mp_template_id',
  ) =>
    sql<number>`case when checkin_reminders.${sql.ref(template)} = ${a.templateId}
      then checkin_reminders.${sql.ref(column)} + 1 else 1 end`
  const oa = a.source.app === 'oa'
  const mpOpenid = a.source.app === 'mp' ? a.source.openid : null
  await db
    .insertInto('checkin_reminders')
    .values({
      member_id: a.memberId,
      appid: a.appid,
      ...(turnOn ? {} : { enabled: false }),
      minute_of_day: minute,
      next_at: occurrenceAfter(a.now, minute, a.timeZone),
      ...(oa
        ? { oa_template_id: a.templateId, oa_credits: 1 }
        : {
            mp_template_id: a.templateId,
            mp_credits: 1,
            mp_openid: mpOpenid,
            mp_granted_at: a.now,
          }),
      created_at: a.now,
      updated_at: a.now,
    })
    .onConflict((oc) =>
      oc.column('member_id').doUpdateSet({
        ...(turnOn
          ? {
              // turning it on again keeps today's decision if the reminder was on already
              next_at: sql<Date>`case when checkin_reminders.enabled then checkin_reminders.next_at
                else ${next} end`,
              enabled: true,
              cancelled: false,
            }
          : {}),
        updated_at: a.now,
        ...(oa
          ? { oa_template_id: a.templateId, oa_credits: credits('oa_credits', 'oa_template_id') }
          : {
              mp_template_id: a.templateId,
              mp_credits: credits('mp_credits', 'mp_template_id'),
              mp_openid: mpOpenid,
              mp_granted_at: a.now,
            }),
      }),
    )
    .execute()
}

/** Forgets an authorisation the member withdrew (a `reject` for that template). */
export async function revokeAuthorisation(
  db: Kysely<Database>,
  r: { memberId: number; app: 'oa' | 'mp'; templateId: string; now: Date },
): Promise<void> {
  const [template, credits] =
    r.app === 'oa'
      ? (['oa_template_id', 'oa_credits'] as const)
      : (['mp_template_id', 'mp_credits'] as const)
  await db
    .updateTable('checkin_reminders')
    .set({ [credits]: 0, updated_at: r.now })
    .where('member_id', '=', r.memberId)
    .where(template, '=', r.templateId)
    .execute()
}

/** What one run of the reminder job did. */
export interface ReminderRun {
  /** Due reminders decided (each moved to its next day). */
  decided: number
  /** Enqueued as customer-service messages. */
  custom: number
  /** Enqueued as subscribe messages (one authorisation used each). */
  subscribe: number
  /** Enqueued as mini-program subscribe messages (one authorisation used each). */
  mpSubscribe: number
  /** Reminders still unsent at their deadline, stored expired (their credits given back). */
  expired?: number
  /** The budget ran out with reminders still due: the next run goes on. */
  unfinished?: true
}

/**
 * Stores the outbox items still unsent at their deadline (`expires_at`) `skipped` (expired) and
 * gives back the one-time authorisation each used when it was enqueued — a subscribe message's to
 * the member's OA credits, a mini-program one's to its openid's, while the reminder still counts
 * that template — `batch` items per statement; returns how many. A dispatcher does the same for
 * one it claims late, but a claim can be far off (a 45009 holds an API until midnight Beijing
 * time, which may come after the member's next reminder is decided: it would find no credit).
 * Only items never marked as attempted, queued or held by a dead claim (`sending`, its lease
 * over: the dispatcher died before its send), taken with `FOR UPDATE SKIP LOCKED` and changed
 * only while still so, each with its credit in the same statement ({@link expireItems}): an item
 * is expired, and its credit given back, once, here or by a claim. A live claim (its lease
 * renewed) is never overtaken; a dead one that comes back finds its claim gone (`claim_token`
 * cleared): its mark and its result are refused, as when another claim has taken it over.
 */
export async function expireReminders(
  db: Kysely<Database>,
  o: { now: Date; batch?: number },
): Promise<number> {
  const batch = o.batch ?? 5000
  // queued, or claimed by a dispatcher that died before its send (its lease — `next_attempt_at`
  // while `sending` — over, as a claim taking it over would find it): never one a live claim holds
  const unsent = sql<boolean>`o.status in ('pending', 'sending')
    and (o.status = 'pending' or o.next_attempt_at <= ${o.now}::timestamptz)
    and o.expires_at <= ${o.now}::timestamptz and o.attempt_started_at is null`
  let expired = 0
  for (;;) {
    const n = await expireItems(db, { where: unsent, now: o.now, batch })
    expired += n
    if (n < batch) return expired
  }
}

/**
 * Decides every reminder due at `slot` and enqueues those to send, `batch` members per statement.
 * Inside quiet hours due reminders are only moved on. Safe to run in any number of instances.
 */
export async function enqueueCheckinReminders(
  db: Kysely<Database>,
  o: {
    slot: Date
    /** The time now, when it is not the slot (a late run): no sending inside quiet hours either. */
    now?: Date
    timeZone: string
    settings: ReminderSettings
    t: Translate
    batch?: number
    /** Batches decided at once, on as many connections (default 2; see {@link inParallel}). */
    parallel?: number
    /**
     * Asked between batches (Workers' bounded invocations): when spent, the run stops; what is
     * still due stays due (`next_at`) for the next minute's run.
     */
    budget?: Budget
  },
): Promise<ReminderRun> {
  const batch = o.batch ?? 50_000
  const today = localDay(o.slot, o.timeZone)
  const source = reminderSource(today)
  const since = new Date(
    Math.max(o.slot.getTime() - REMINDER_LATE_MS, localDayStart(today, o.timeZone).getTime() - 1),
  )
  const quiet = (at: Date) => quietHoursEnd(at, o.settings.quietHours, o.timeZone) !== null
  const send = !quiet(o.slot) && !quiet(o.now ?? o.slot)
  const deadline = reminderDeadline(o.slot, o.settings, o.timeZone)
  const custom = JSON.stringify({ msgtype: 'text', text: { content: o.t('reminder.message') } })
  const sub = o.settings.subscribe
  const subscribe = sub
    ? JSON.stringify({
        template_id: sub.templateId,
        data: {
          [sub.titleKey]: { value: o.t('reminder.subscribe.title') },
          [sub.hintKey]: { value: o.t('reminder.subscribe.hint') },
        },
      })
    : null
  const mpSub = o.settings.mpTemplateId && o.settings.mpSubscribe
  const mpTemplateId = mpSub ? o.settings.mpTemplateId! : null
  // `touser` (the mini program's openid) is set per member in the statement
  const mpSubscribe = mpSub
    ? JSON.stringify({
        template_id: mpTemplateId,
        ...(mpSub.page ? { page: mpSub.page } : {}),
        data: {
          [mpSub.titleKey]: { value: o.t('reminder.subscribe.title') },
          [mpSub.hintKey]: { value: o.t('reminder.subscribe.hint') },
        },
      })
    : null
  const blocked = (channel: string, extra: RawBuilder<unknown>) =>
    sql`exists (select 1 from member_reachability b where b.appid = m.appid
      and b.openid = m.openid and b.channel = ${channel} and ${extra})`
  const run: ReminderRun = { decided: 0, custom: 0, subscribe: 0, mpSubscribe: 0 }
  // First, so a credit an expired reminder gives back is there for today's decision.
  const expired = await expireReminders(db, { now: o.now ?? o.slot })
  if (expired > 0) run.expired = expired
  await inParallel(o.parallel ?? 2, async () => {
    for (;;) {
      // Channels as the outbox will see them (reachability.ts), checked here for the whole batch;
      // the dispatcher checks again at send time.
      const { rows } = await db.transaction().execute(async (trx) => {
        await keyedJoins(trx)
        return sql<{ decided: number; custom: number; subscribe: number; mp_subscribe: number }>`
      with picked as (
        select member_id, next_at, reminded_on, oa_template_id, oa_credits, mp_template_id,
          mp_credits, mp_openid
        from checkin_reminders
        where enabled and next_at <= ${o.slot}::timestamptz
        order by next_at
        limit ${batch}
        for update skip locked
      ),
      decided as (
        select p.member_id, m.appid, m.openid, p.mp_openid, p.next_at, case
          when not ${send}::boolean or p.next_at <= ${since}::timestamptz
            or p.reminded_on = ${today}::date or not m.subscribed
            -- the day's reminder went already (an activity's: at most one a day of either kind)
            or exists (select 1 from push_outbox o where o.appid = m.appid
              and o.source = ${source} and o.openid = m.openid)
            or exists (select 1 from checkins c where c.member_id = m.id and c.day = ${today}::date)
            or ${blocked('any', sql`true`)} then null
          -- only the 48-hour window of a message, open, not refused, with quota left: a
          -- follow's, scan's or click's minute is not for reminders (cs-window.ts)
          when ${messageWindowOpen(o.slot)} then 'custom'
          when p.oa_template_id = ${sub?.templateId ?? null}::text and p.oa_credits > 0
            and not ${blocked('subscribe', sql`b.scope = p.oa_template_id and b.accepted_at is null`)}
            then 'subscribe'
          when p.mp_template_id = ${mpTemplateId}::text and p.mp_credits > 0
            and p.mp_openid is not null
            then 'mp_subscribe'
          end as kind
        from picked p join members m on m.id = p.member_id
      ),
      moved as (
        update checkin_reminders r set
          next_at = ${occurrenceAfter(o.slot, sql<number>`r.minute_of_day`, o.timeZone)},
          reminded_on = case when d.kind is null then r.reminded_on else ${today}::date end,
          oa_credits = r.oa_credits - case when d.kind = 'subscribe' then 1 else 0 end,
          mp_credits = r.mp_credits - case when d.kind = 'mp_subscribe' then 1 else 0 end
        from decided d
        where r.member_id = d.member_id
        returning r.member_id
      ),
      queued as (
        insert into push_outbox (appid, source, openid, kind, payload, lane, next_attempt_at,
          expires_at, created_at)
        select d.appid, ${source}, d.openid, d.kind,
          case d.kind when 'custom' then ${custom}::text when 'subscribe' then ${subscribe}::text
            else jsonb_set(${mpSubscribe}::jsonb, '{touser}', to_jsonb(d.mp_openid))::text end,
          ${LANE.notice}, ${o.slot}::timestamptz,
          -- a run catching up decides reminders due before its slot: 2 h from their own time
          least(${deadline}::timestamptz, d.next_at + ${REMINDER_LATE_MS}::integer * interval '1 millisecond'),
          ${o.slot}::timestamptz
        from decided d
        where d.kind is not null
        on conflict (appid, source, openid) do nothing
        returning kind
      )
      select (select count(*) from moved)::integer as decided,
        (select count(*) from queued where kind = 'custom')::integer as custom,
        (select count(*) from queued where kind = 'subscribe')::integer as subscribe,
        (select count(*) from queued where kind = 'mp_subscribe')::integer as mp_subscribe`.execute(
          trx,
        )
      })
      const r = rows[0]!
      run.decided += r.decided
      run.custom += r.custom
      run.subscribe += r.subscribe
      run.mpSubscribe += r.mp_subscribe
      if (r.decided < batch) return
      if (o.budget?.left() === false) {
        run.unfinished = true
        return
      }
    }
  })
  return run
}
