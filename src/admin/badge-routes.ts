/**
 * Badges (徽章) in the operator API (inside /admin/api, behind its token):
 *
 *   GET   badges                      the rules in effect (account rows over defaults), with holders
 *   PUT   badges/:key                 { name, description?, predicate, enabled?, position? }
 *   PATCH badges/:key                 { enabled }: switch a badge (a default too) on or off
 *   GET   members/:openid/badges      the badges a member holds
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { effectiveBadgeRules, memberBadges } from '../community/badges.js'
import { accountParam, parseBody } from '../routes/validate.js'
import {
  isBadgeKey,
  putBadgeInput,
  putBadgeRule,
  setBadgeEnabled,
  setBadgeEnabledInput,
} from './actions/badge-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { apiActor, memberParam } from './route-helpers.js'

const badgeKey = (key: string) => {
  if (!isBadgeKey(key))
    throw new HTTPException(400, { message: 'key: lowercase letters, digits and _ (2–41)' })
  return key
}

/** The badge routes, to mount inside the operator API. */
export function badgeAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)
  const member = memberParam(o)

  app.get('/accounts/:appid/badges', async (c) => {
    return c.json({ badges: await effectiveBadgeRules(o.db, account(c)) })
  })

  app.put('/accounts/:appid/badges/:key', async (c) => {
    const appid = account(c)
    const key = badgeKey(c.req.param('key'))
    const body = await parseBody(c, putBadgeInput)
    await putBadgeRule(o, apiActor(c), { ...body, appid, key })
    return c.json({ key, ...body })
  })

  app.patch('/accounts/:appid/badges/:key', async (c) => {
    const appid = account(c)
    const key = badgeKey(c.req.param('key'))
    const { enabled } = await parseBody(c, setBadgeEnabledInput)
    if (!(await setBadgeEnabled(o, apiActor(c), { appid, key, enabled })))
      throw new HTTPException(404, { message: 'unknown badge' })
    return c.json({ key, enabled })
  })

  app.get('/accounts/:appid/members/:openid/badges', async (c) => {
    const { member: m } = await member(c)
    return c.json({ badges: await memberBadges(o.db, m.id) })
  })

  return app
}
