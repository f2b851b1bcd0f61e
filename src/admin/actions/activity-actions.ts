/** An operator makes and changes activities and awards points to who took part. */
import type { Selectable, Transaction } from 'kysely'
import * as v from 'valibot'
import type { Translate } from '../../bot/i18n.js'
import { awardParticipants, occurrenceOf, periodOf } from '../../community/activities.js'
import { levelByKey } from '../../community/levels.js'
import type { Database } from '../../db/schema.js'
import { day, int } from '../../routes/validate.js'
import { membersByOpenid } from '../reads/members-by-openid.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'
import { isCron } from './campaign-input.js'
import { dailyLimitApplies, type OverLimit, overDailyLimit } from './grant-limit.js'

/** An activity row. */
export type Activity = Selectable<Database['activities']>

const fields = {
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(40)),
  description: v.pipe(v.string(), v.trim(), v.maxLength(200)),
  cron: v.pipe(
    v.string(),
    v.check((c) => isCron(c, 'UTC'), 'five fields (min hour dom mon dow)'),
  ),
  points: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100_000)),
  capacity: v.nullable(int(1)),
}

/** The input of {@link createActivity} (`POST activities`). */
export const createActivityInput = v.strictObject({
  key: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,19}$/, 'lowercase letters, digits and -')),
  ...fields,
  cadence: v.picklist(['daily', 'weekly', 'monthly'], 'daily, weekly or monthly'),
  points: v.optional(fields.points, 0),
  capacity: v.optional(fields.capacity, null),
  signup: v.optional(v.boolean(), true),
  requiresPurchase: v.optional(v.boolean(), false),
})
export type CreateActivityInput = v.InferOutput<typeof createActivityInput>

/** The input of {@link updateActivity} (`PATCH activities/:key`): the fields to change. */
export const updateActivityInput = v.partial(
  v.strictObject({ ...fields, status: v.picklist(['open', 'closed'], 'open or closed') }),
)
export type UpdateActivityInput = v.InferOutput<typeof updateActivityInput>

/** The input of {@link awardActivity} (`POST activities/:key/award`). */
export const awardActivityInput = v.strictObject({
  openids: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1), v.maxLength(1000)),
  period: v.optional(day('YYYY-MM-DD')),
})
export type AwardActivityInput = v.InferOutput<typeof awardActivityInput>

/** Adds an open activity; undefined when the account has one with that key (nothing changes). */
export async function createActivity(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: CreateActivityInput & { appid: string },
): Promise<Activity | undefined> {
  const { appid, ...b } = input
  const now = deps.clock.now()
  const step = { appid, actor, action: 'activity.create', target: b.key, now } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const created = await trx
      .insertInto('activities')
      .values({
        appid,
        key: b.key,
        name: b.name,
        description: b.description,
        cron: b.cron,
        cadence: b.cadence,
        points: b.points,
        signup: b.signup,
        capacity: b.capacity,
        requires_purchase: b.requiresPurchase,
        status: 'open',
        created_at: now,
      })
      .onConflict((oc) => oc.columns(['appid', 'key']).doNothing())
      .returningAll()
      .executeTakeFirst()
    return { result: created, details: created && b }
  })
}

/** Changes an activity's fields (`activity.update`, even when nothing changed). */
export async function updateActivity(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: UpdateActivityInput & { activity: Activity },
): Promise<Activity> {
  const { activity, ...b } = input
  const now = deps.clock.now()
  const step = {
    appid: activity.appid,
    actor,
    action: 'activity.update',
    target: activity.key,
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const updated = await trx
      .updateTable('activities')
      .set(b)
      .where('id', '=', activity.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    return { result: updated, details: b }
  })
}

/** What an award did: per member, or why nothing was awarded. */
export type AwardActivityResult =
  /** `results` is null only if the activity went away meanwhile. */
  | { status: 'awarded'; period: string; results: { memberId: number; status: string }[] | null }
  /** Openids that name nobody. */
  | { status: 'unknown'; openids: string[] }
  /** An occurrence before the activity's first or after the current one (`first`…`last`). */
  | { status: 'period'; first: string; last: string }
  | OverLimit

/** Options of {@link awardActivity}. */
export interface AwardActivityOptions {
  /** The actor is a console operator whose per-day grant limit applies (grant-limit.ts). */
  dailyLimit?: boolean
}

/**
 * The occurrences an award may name: from the one the activity was created in to the current one.
 * An occurrence that has not started has no participants yet, and one before the activity existed
 * had none: without the bound, "once per occurrence" would allow an award per past day, week or
 * month back to 1970.
 */
export function awardablePeriods(a: Activity, now: Date, timeZone: string) {
  return {
    first: periodOf(a.cadence, new Date(a.created_at), timeZone),
    last: periodOf(a.cadence, now, timeZone),
  }
}

/**
 * Awards the activity's points to the members for an occurrence (`period`: any day of it; default
 * the current one; from the activity's first occurrence to the current one,
 * {@link awardablePeriods}), once each, and audits `activity.award` with the points it gave
 * (`granted`). Without a limit each member's award commits on its own and the audit entry is
 * written after. With `dailyLimit`, for an operator whose limit applies (dailyLimitApplies), it is
 * all one transaction: the operator is locked first and the
 * points the award would give (the activity's points × the level multiplier of each member not
 * awarded yet) are checked against their per-day limit, as a grant's are: grants and awards count
 * together.
 */
export async function awardActivity(
  deps: ActionDeps & { t?: Translate },
  actor: Actor,
  input: AwardActivityInput & { activity: Activity },
  options: AwardActivityOptions = {},
): Promise<AwardActivityResult> {
  const { activity: a, ...b } = input
  const appid = a.appid
  const now = deps.clock.now()
  const { members, unknown } = await membersByOpenid(deps.db, appid, b.openids)
  if (unknown.length) return { status: 'unknown', openids: unknown }
  const period = b.period
    ? occurrenceOf(a.cadence, b.period)
    : periodOf(a.cadence, now, deps.timeZone)
  const bounds = awardablePeriods(a, now, deps.timeZone)
  if (period < bounds.first || period > bounds.last) return { status: 'period', ...bounds }
  const step = { appid, actor, action: 'activity.award', target: a.key, now } satisfies AuditedStep
  const memberIds = members.map((m) => m.id)
  const r = { appid, key: a.key, period, memberIds, now, timeZone: deps.timeZone, t: deps.t }
  const awarded = (results: Awarded) => ({
    result: { status: 'awarded' as const, period, results },
    details: { ...b, period, granted: (results ?? []).reduce((sum, x) => sum + x.points, 0) },
  })
  if (!options.dailyLimit || !(await dailyLimitApplies(deps.db, actor.name)))
    // No limit to check (the API, an owner, an operator without one): each member's award commits
    // on its own (awardParticipants on the database), so no member stays locked while the others
    // are awarded — a check-in of the first of 1000 members waits for nothing — and a retry
    // awards only who is still missing.
    return auditedAction<AwardActivityResult>(deps.db, { ...step, commit: 'after' }, async (db) =>
      awarded(await awardParticipants(db, r)),
    )
  // The limit's check and the award are one transaction (the limit bounds its size): the operator
  // and the limit are read again under the lock.
  return auditedAction<AwardActivityResult>(deps.db, step, async (trx) => {
    const due = () => pointsDue(trx, a, period, memberIds)
    const over = await overDailyLimit(trx, actor.name, due, now, deps.timeZone)
    if (over) return { result: over }
    await lockMembers(trx, memberIds)
    return awarded(await awardParticipants(trx, r))
  })
}

type Awarded = Awaited<ReturnType<typeof awardParticipants>>

/** Locks the members in one order (by id), so two awards naming the same members never deadlock. */
async function lockMembers(trx: Transaction<Database>, ids: number[]) {
  return trx
    .selectFrom('members')
    .select(['id', 'level'])
    .where('id', 'in', ids)
    .orderBy('id')
    .forUpdate()
    .execute()
}

/**
 * What an award would give (awardParticipants): the activity's points × the level multiplier of
 * each member not awarded this occurrence yet — with the activity and the members locked, so the
 * award gives exactly this.
 */
async function pointsDue(
  trx: Transaction<Database>,
  a: Activity,
  period: string,
  memberIds: number[],
): Promise<number> {
  const points = await activityPoints(trx, a.id)
  const locked = await lockMembers(trx, memberIds)
  const keys = memberIds.map((id) => `activity:${a.id}:${period}:${id}`)
  const done = await trx
    .selectFrom('points_ledger')
    .select('idempotency_key')
    .where('appid', '=', a.appid)
    .where('idempotency_key', 'in', keys)
    .execute()
  const awarded = new Set(done.map((d) => d.idempotency_key))
  return locked
    .filter((m) => !awarded.has(`activity:${a.id}:${period}:${m.id}`))
    .reduce((sum, m) => sum + points * levelByKey(m.level).multiplier, 0)
}

/** The activity's points, its row locked: no edit changes them before the award commits. */
async function activityPoints(trx: Transaction<Database>, id: number): Promise<number> {
  const row = await trx
    .selectFrom('activities')
    .select('points')
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  return row?.points ?? 0
}
