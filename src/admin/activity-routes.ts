/**
 * Activities in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   activities                     the account's activities (seeded with the defaults)
 *   POST  activities                     { key, name, description, cron, cadence, points?,
 *                                          signup?, capacity?, requiresPurchase? }
 *   PATCH activities/:key                { name?, description?, cron?, points?, capacity?, status? }
 *                                          (at least one; `{}` is a 400)
 *   GET   activities/:key/signups?period=YYYY-MM-DD   confirmed and waitlisted, in order
 *   POST  activities/:key/award          { openids, period? } points for taking part, once each
 *
 * A `period` may be any day of the occurrence; it is read as the occurrence's first day. An award
 * names an occurrence from the one the activity was created in to the current one (else 400).
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import { findActivity } from '../community/activities.js'
import { accountParam, day, parseBody, parseQuery } from '../routes/validate.js'
import {
  awardActivity,
  awardActivityInput,
  createActivity,
  createActivityInput,
  updateActivity,
  updateActivityInput,
} from './actions/activity-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { activitySignups, listActivities } from './reads/activity-reads.js'
import { apiActor, someChange, unknownMembers } from './route-helpers.js'

const signupsQuery = v.object({ period: v.optional(day('YYYY-MM-DD')) })

/** The activity routes, to mount inside the operator API. */
export function activityAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const activityOf = async (appid: string, key: string) => {
    const a = await findActivity(o.db, appid, key)
    if (!a) throw new HTTPException(404, { message: 'no such activity' })
    return a
  }

  app.get('/accounts/:appid/activities', async (c) => {
    return c.json({ activities: await listActivities(o.db, account(c), o.clock.now()) })
  })

  app.post('/accounts/:appid/activities', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, createActivityInput)
    const row = await createActivity(o, apiActor(c), { ...b, appid })
    if (!row) throw new HTTPException(409, { message: `key: ${b.key} exists` })
    return c.json(row, 201)
  })

  app.patch('/accounts/:appid/activities/:key', async (c) => {
    const activity = await activityOf(account(c), c.req.param('key'))
    const b = someChange(await parseBody(c, updateActivityInput))
    return c.json(await updateActivity(o, apiActor(c), { ...b, activity }))
  })

  app.get('/accounts/:appid/activities/:key/signups', async (c) => {
    const a = await activityOf(account(c), c.req.param('key'))
    const { period } = parseQuery(c, signupsQuery)
    const q = { period, now: o.clock.now(), timeZone: o.timeZone }
    return c.json(await activitySignups(o.db, a, q))
  })

  app.post('/accounts/:appid/activities/:key/award', async (c) => {
    const activity = await activityOf(account(c), c.req.param('key'))
    const b = await parseBody(c, awardActivityInput)
    const result = await awardActivity(o, apiActor(c), { ...b, activity })
    if (result.status === 'unknown') throw unknownMembers(result.openids)
    if (result.status === 'period')
      throw new HTTPException(400, {
        message: `period: must be an occurrence from ${result.first} to ${result.last}`,
      })
    // The API's token holder has no per-day limit (awardActivity is called without `dailyLimit`).
    if (result.status === 'over_limit') throw new HTTPException(400, { message: 'over limit' })
    return c.json({ period: result.period, points: activity.points, results: result.results })
  })
  return app
}
