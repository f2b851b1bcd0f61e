/**
 * Lifecycle journeys in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   journeys                        the account's journeys: segment, status, steps
 *   GET   journeys/:id/report             enrollments (started, active, converted, left,
 *                                           completed) and per step: audience, skipped, enqueued,
 *                                           sent, failed, delivered, converted
 *   POST  journeys/:id/activate|pause     switch on (from the next transitions on; 400 naming
 *                                           the step and field when a step cannot run, e.g. a
 *                                           template WeChat would refuse) or off (holds its
 *                                           queued pushes); 409 when it already is
 *
 * The seeded journeys are adopted with `POST campaigns/strategies` (campaign-routes.ts).
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { findJourney } from '../community/journey-catalog.js'
import { journeyReport, listJourneys } from '../community/journey-report.js'
import { accountParam } from '../routes/validate.js'
import { changeJourney, journeyView } from './actions/journey-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { apiActor } from './route-helpers.js'

/** The journey routes, to mount inside the operator API. */
export function journeyAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const find = async (appid: string, id: string) => {
    const row = /^\d{1,15}$/.test(id) ? await findJourney(o.db, appid, Number(id)) : undefined
    if (!row) throw new HTTPException(404, { message: 'no such journey' })
    return row
  }

  app.get('/accounts/:appid/journeys', async (c) => {
    return c.json({ journeys: (await listJourneys(o.db, account(c))).map(journeyView) })
  })

  app.get('/accounts/:appid/journeys/:id/report', async (c) => {
    const journey = await find(account(c), c.req.param('id'))
    return c.json({ journey: journeyView(journey), ...(await journeyReport(o.db, journey)) })
  })

  app.post('/accounts/:appid/journeys/:id/:action{activate|pause}', async (c) => {
    const appid = account(c)
    const journey = await find(appid, c.req.param('id'))
    const status = c.req.param('action') === 'activate' ? 'active' : 'paused'
    const r = await changeJourney(o, apiActor(c), { appid, id: journey.id, status })
    if (!r) throw new HTTPException(404, { message: 'no such journey' })
    if (!r.moved && 'problem' in r && r.problem)
      throw new HTTPException(400, { message: r.problem })
    if (!r.moved) throw new HTTPException(409, { message: `the journey is already ${r.status}` })
    return c.json({ ...journeyView(journey), status: r.status, outbox: r.outbox })
  })
  return app
}
