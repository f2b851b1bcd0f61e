/** An operator makes and changes activities and awards points to who took part. */
import type { Selectable } from 'kysely'
import * as v from 'valibot'
import type { Translate } from '../../bot/i18n.js'
import { awardParticipants, occurrenceOf, periodOf } from '../../community/activities.js'
import type { Database } from '../../db/schema.js'
import { day, int } from '../../routes/validate.js'
import { membersByOpenid } from '../reads/members-by-openid.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'
import { isCron } from './campaign-input.js'

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

/** What an award did: per member, or the openids that name nobody (nothing awarded). */
export type AwardActivityResult =
  /** `results` is null only if the activity went away meanwhile. */
  | { status: 'awarded'; period: string; results: { memberId: number; status: string }[] | null }
  | { status: 'unknown'; openids: string[] }

/**
 * Awards the activity's points to the members for an occurrence (`period`: any day of it; default
 * the current one), once each, and audits `activity.award` after: each award commits on its own
 * (src/community/activities.ts), so a retry awards only who is still missing.
 */
export async function awardActivity(
  deps: ActionDeps & { t?: Translate },
  actor: Actor,
  input: AwardActivityInput & { activity: Activity },
): Promise<AwardActivityResult> {
  const { activity: a, ...b } = input
  const appid = a.appid
  const now = deps.clock.now()
  const { members, unknown } = await membersByOpenid(deps.db, appid, b.openids)
  if (unknown.length) return { status: 'unknown', openids: unknown }
  const period = b.period
    ? occurrenceOf(a.cadence, b.period)
    : periodOf(a.cadence, now, deps.timeZone)
  const step = {
    appid,
    actor,
    action: 'activity.award',
    target: a.key,
    now,
    commit: 'after' as const,
  } satisfies AuditedStep
  return auditedAction<AwardActivityResult>(deps.db, step, async (db) => {
    const memberIds = members.map((m) => m.id)
    const r = { appid, key: a.key, period, memberIds, now, timeZone: deps.timeZone, t: deps.t }
    const results = await awardParticipants(db, r)
    return { result: { status: 'awarded', period, results }, details: { ...b, period } }
  })
}
