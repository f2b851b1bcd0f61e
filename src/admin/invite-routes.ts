/**
 * Invites in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   invites/report?from=&to=      sharers, invites, conversions, share rate, K, top inviters
 *   POST  members/:openid/invite-qr      { campaign? } a follower's invite QR for a campaign (409
 *                                        for a mini-program member)
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { liveToday } from '../analytics/series.js'
import { localDay } from '../community/community-time.js'
import { inviteReport } from '../community/invite-report.js'
import { accountParam, parseBody, parseQuery } from '../routes/validate.js'
import { issueInviteQr, issueInviteQrInput } from './actions/invite-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { invitePeriod, invitePeriodInput } from './reads/invite-period.js'
import { apiActor, memberParam, noApi, notFollower } from './route-helpers.js'

/** The invite routes, to mount inside the operator API. */
export function inviteAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const memberOf = memberParam(o)
  // the report's Σ DAU is read as the analytics series read it (today's live, cached 5 s)
  const live = liveToday(o.db, undefined, o.shop)

  app.get('/accounts/:appid/invites/report', async (c) => {
    const appid = account(c)
    const now = o.clock.now()
    const today = localDay(now, o.timeZone)
    const period = invitePeriod(parseQuery(c, invitePeriodInput), today)
    if ('problem' in period) throw new HTTPException(400, { message: period.problem })
    return c.json(await inviteReport(o.db, { appid, ...period, timeZone: o.timeZone, now, live }))
  })

  app.post('/accounts/:appid/members/:openid/invite-qr', async (c) => {
    const { appid, member, miniProgram } = await memberOf(c)
    // an OA QR: a scan looks for the code under the account's appid, never a mini program's
    if (miniProgram) throw notFollower()
    const body = await parseBody(c, issueInviteQrInput)
    const result = await issueInviteQr(o, apiActor(c), { ...body, appid, member })
    if (result.status === 'no_api') throw noApi()
    return c.json(result.qr, result.qr.issued ? 201 : 200)
  })

  return app
}
