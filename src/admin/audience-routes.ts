/**
 * Audiences in the operator API (inside /admin/api, behind its bearer token):
 *
 *   GET   segments                       members per lifecycle segment
 *   POST  tags/:tagid/members            { openids } tag followers at WeChat, and here (audiences)
 */
import { Hono } from 'hono'
import { segmentCounts } from '../community/segments.js'
import { accountParam, digits, INT_MAX, parseBody, parseParam } from '../routes/validate.js'
import { tagMembers, tagMembersInput } from './actions/tag-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { apiActor, noApi, unknownMembers } from './route-helpers.js'

const tagId = digits(1, INT_MAX, 'a WeChat tag id')

/** The segments and tags routes, to mount inside the operator API. */
export function audienceAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)

  app.get('/accounts/:appid/segments', async (c) => {
    return c.json({ segments: await segmentCounts(o.db, account(c)) })
  })

  app.post('/accounts/:appid/tags/:tagid/members', async (c) => {
    const appid = account(c)
    const tagid = parseParam(c, 'tagid', tagId)
    const body = await parseBody(c, tagMembersInput)
    const result = await tagMembers(o, apiActor(c), { ...body, appid, tagid })
    if (result.status === 'no_api') throw noApi()
    if (result.status === 'unknown') throw unknownMembers(result.openids)
    return c.json({ tagid, tagged: result.tagged })
  })

  return app
}
