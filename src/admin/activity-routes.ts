/**
 * Activities in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   activities                     the account's activities (seeded with the defaults)
 *   POST  activities                     { key, name, description, cron, cadence, points?,
 *                                          signup?, capacity?, requiresPurchase? }
 *   PATCH activities/:key                { name?, description?, cron?, points?, capacity?, status? }
 *   GET   activities/:key/signups?period=YYYY-MM-DD   confirmed and waitlisted, in order
 *   POST  activities/:key/award          { openids, period? } points for taking part, once each
 *
 * A `period` may be any day of the occurrence; it is read as the occurrence's first day.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import type { Clock } from '../clock.js'
import {
  awardParticipants,
  ensureDefaultActivities,
  findActivity,
  occurrenceOf,
  periodOf,
} from '../community/activities.js'
import { audit } from '../community/audit-log.js'
import { cronMatches } from '../cron.js'
import type { Database } from '../db/schema.js'
import { accountParam, day, int, parseBody, parseQuery } from '../routes/validate.js'

const ACTOR = 'operator'
const cron = v.pipe(
  v.string(),
  v.check((c) => {
    try {
      cronMatches(c, new Date(), 'UTC')
      return true
    } catch {
      return false
    }
  }, 'five fields (min hour dom mon dow)'),
)
const fields = {
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(40)),
  description: v.pipe(v.string(), v.trim(), v.maxLength(200)),
  cron,
  points: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100_000)),
  capacity: v.nullable(int(1)),
}
const createBody = v.strictObject({
  key: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,19}$/, 'lowercase letters, digits and -')),
  ...fields,
  cadence: v.picklist(['daily', 'weekly', 'monthly'], 'daily, weekly or monthly'),
  points: v.optional(fields.points, 0),
  capacity: v.optional(fields.capacity, null),
  signup: v.optional(v.boolean(), true),
  requiresPurchase: v.optional(v.boolean(), false),
})
const patchBody = v.partial(
  v.strictObject({ ...fields, status: v.picklist(['open', 'closed'], 'open or closed') }),
)
const awardBody = v.strictObject({
  openids: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1), v.maxLength(1000)),
  period: v.optional(day('YYYY-MM-DD')),
})
const signupsQuery = v.object({ period: v.optional(day('YYYY-MM-DD')) })

export function activityAdminRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  timeZone: string
  appids: string[]
}): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const activityOf = async (appid: string, key: string) => {
    const a = await findActivity(o.db, appid, key)
    if (!a) throw new HTTPException(404, { message: 'no such activity' })
    return a
  }

  app.get('/accounts/:appid/activities', async (c) => {
    const appid = account(c)
    await ensureDefaultActivities(o.db, appid, o.clock.now())
    const activities = await o.db
      .selectFrom('activities')
      .selectAll()
      .where('appid', '=', appid)
      .orderBy('id')
      .execute()
    return c.json({ activities })
  })

  app.post('/accounts/:appid/activities', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, createBody)
    const now = o.clock.now()
    const row = await o.db.transaction().execute(async (trx) => {
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
      if (created)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'activity.create',
          target: b.key,
          details: b,
          now,
        })
      return created
    })
    if (!row) throw new HTTPException(409, { message: `key: ${b.key} exists` })
    return c.json(row, 201)
  })

  app.patch('/accounts/:appid/activities/:key', async (c) => {
    const appid = account(c)
    const a = await activityOf(appid, c.req.param('key'))
    const b = await parseBody(c, patchBody)
    const now = o.clock.now()
    const row = await o.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('activities')
        .set(b)
        .where('id', '=', a.id)
        .returningAll()
        .executeTakeFirstOrThrow()
      await audit(trx, {
        appid,
        actor: ACTOR,
        action: 'activity.update',
        target: a.key,
        details: b,
        now,
      })
      return updated
    })
    return c.json(row)
  })

  app.get('/accounts/:appid/activities/:key/signups', async (c) => {
    const appid = account(c)
    const a = await activityOf(appid, c.req.param('key'))
    const asked = parseQuery(c, signupsQuery).period
    const period = asked
      ? occurrenceOf(a.cadence, asked)
      : periodOf(a.cadence, o.clock.now(), o.timeZone)
    const signups = await o.db
      .selectFrom('activity_signups')
      .innerJoin('members', 'members.id', 'activity_signups.member_id')
      .select(['members.openid', 'activity_signups.status', 'activity_signups.created_at'])
      .where('activity_signups.activity_id', '=', a.id)
      .where('activity_signups.period', '=', period)
      .where('activity_signups.status', '!=', 'cancelled')
      .orderBy('activity_signups.created_at')
      .orderBy('activity_signups.member_id')
      .execute()
    return c.json({ activity: a.key, period, capacity: a.capacity, signups })
  })

  app.post('/accounts/:appid/activities/:key/award', async (c) => {
    const appid = account(c)
    const a = await activityOf(appid, c.req.param('key'))
    const b = await parseBody(c, awardBody)
    const now = o.clock.now()
    const members = await o.db
      .selectFrom('members')
      .select(['id', 'openid'])
      .where('appid', '=', appid)
      .where('openid', 'in', b.openids)
      .execute()
    const unknown = b.openids.filter((x) => !members.some((m) => m.openid === x))
    if (unknown.length)
      throw new HTTPException(404, { message: `unknown members: ${unknown.join(', ')}` })
    const period = b.period
      ? occurrenceOf(a.cadence, b.period)
      : periodOf(a.cadence, now, o.timeZone)
    const results = await awardParticipants(o.db, {
      appid,
      key: a.key,
      period,
      memberIds: members.map((m) => m.id),
      now,
      timeZone: o.timeZone,
    })
    await audit(o.db, {
      appid,
      actor: ACTOR,
      action: 'activity.award',
      target: a.key,
      details: { ...b, period },
      now,
    })
    return c.json({ period, points: a.points, results })
  })
  return app
}
