/**
 * Campaigns in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   campaigns                       list
 *   POST  campaigns                       { name, audience: {segment?}, template | variants,
 *                                           schedule: {cron} | {at}, conversionDays? } → draft
 *   PATCH campaigns/:id                   the same body: replaces the campaign's definition (its
 *                                           status stays) until it starts sending — 409 once a run
 *                                           was enqueued or it was finished (campaign-edit.ts)
 *   POST  campaigns/:id/schedule|pause|resume|finish   lifecycle: pause holds the campaign's
 *                                           queued pushes, resume releases them, finish cancels
 *                                           them and stops unfinished runs (campaign-lifecycle.ts)
 *   POST  campaigns/strategies            { templates: {new, at_risk, loyal}, cron? } the
 *                                           re-engagement strategies, now journeys (paused;
 *                                           each template checked as a campaign's is):
 *                                           onboarding, recall offer, VIP invitation
 *                                           (journey-routes.ts; `cron` is no longer used)
 *   GET   campaigns/:id/report            per variant: enqueued, sent, failed, delivered, clicked,
 *                                           converted, with the A/B z-test; the account's quota pause
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { CampaignMove } from '../community/campaign-lifecycle.js'
import { accountParam, parseBody } from '../routes/validate.js'
import { changeCampaign, createCampaign, updateCampaign } from './actions/campaign-actions.js'
import {
  createCampaignInput,
  createCampaignProblem,
  PASSED,
  strategiesInput,
  strategiesProblem,
} from './actions/campaign-input.js'
import { createStrategyJourneys } from './actions/journey-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import {
  campaignReportView,
  campaignView,
  editRefusal,
  findCampaign,
  listCampaigns,
  requestWaitUntil,
} from './reads/campaign-views.js'
import { apiActor } from './route-helpers.js'

/** The campaign routes, to mount inside the operator API. */
export function campaignAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const find = async (appid: string, id: string) => {
    const row = await findCampaign(o.db, appid, id)
    if (!row) throw new HTTPException(404, { message: 'no such campaign' })
    return row
  }

  app.get('/accounts/:appid/campaigns', async (c) => {
    return c.json({ campaigns: await listCampaigns(o.db, account(c)) })
  })

  app.post('/accounts/:appid/campaigns', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, createCampaignInput)
    const problem = createCampaignProblem(b, o.timeZone, o.clock.now())
    if (problem) throw new HTTPException(400, { message: problem })
    return c.json(await createCampaign(o, apiActor(c), { ...b, appid }), 201)
  })

  app.patch('/accounts/:appid/campaigns/:id', async (c) => {
    const appid = account(c)
    const campaign = await find(appid, c.req.param('id'))
    const b = await parseBody(c, createCampaignInput)
    const refused = (why: 'started' | 'finished') =>
      new HTTPException(409, {
        message:
          why === 'started'
            ? 'the campaign has started sending (a run was enqueued): finish it and make another'
            : 'a finished campaign cannot be edited',
      })
    // One that can no longer be edited says so first, whatever the body (its time has passed).
    const refusal = await editRefusal(o.db, campaign)
    if (refusal) throw refused(refusal)
    const problem = createCampaignProblem(b, o.timeZone, o.clock.now())
    if (problem) throw new HTTPException(400, { message: problem })
    const result = await updateCampaign(o, apiActor(c), { ...b, appid, id: campaign.id })
    if (!result) throw new HTTPException(404, { message: 'no such campaign' })
    if (result.status !== 'updated') throw refused(result.status)
    return c.json(result.campaign)
  })

  app.post('/accounts/:appid/campaigns/strategies', async (c) => {
    const appid = account(c)
    const b = await parseBody(c, strategiesInput)
    const problem = strategiesProblem(b, o.timeZone)
    if (problem) throw new HTTPException(400, { message: problem })
    const created = await createStrategyJourneys(o, apiActor(c), { ...b, appid })
    return c.json({ created }, created.length ? 201 : 200)
  })

  app.post('/accounts/:appid/campaigns/:id/:action{schedule|pause|resume|finish}', async (c) => {
    const appid = account(c)
    const campaign = await find(appid, c.req.param('id'))
    const move = c.req.param('action') as CampaignMove
    const result = await changeCampaign(o, apiActor(c), { appid, id: campaign.id, move })
    if (!result) throw new HTTPException(404, { message: 'no such campaign' })
    if (!result.moved && 'sendTimePassed' in result)
      throw new HTTPException(409, {
        message: `schedule.at: ${PASSED}: edit its time first (${result.sendTimePassed.toISOString()})`,
      })
    if (!result.moved)
      throw new HTTPException(409, { message: `cannot ${move} a ${result.status} campaign` })
    const moved = await find(appid, String(campaign.id))
    return c.json({
      ...campaignView(moved),
      outbox: result.outbox,
      runsStopped: result.runsStopped,
    })
  })

  app.get('/accounts/:appid/campaigns/:id/report', async (c) => {
    const appid = account(c)
    const campaign = await find(appid, c.req.param('id'))
    return c.json(
      await campaignReportView(o.db, campaign, o.clock.now(), {
        waitUntil: requestWaitUntil(c),
        logger: o.logger,
        ...o.reportCounts,
      }),
    )
  })
  return app
}
