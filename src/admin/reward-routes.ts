/**
 * Points rules, rewards and redemptions in the operator API (inside /admin/api, behind its token):
 *
 *   GET   rules                          effective rules (account overrides over defaults)
 *   PUT   rules/:rule                    { points, capCount?, capPeriod?, enabled? }
 *   GET   rewards                        every reward (seeded with the defaults)
 *   POST  rewards                        { code, name, cost, stock?, perMemberLimit?, cashbackFen? }
 *   PATCH rewards/:code                  { name?, cost?, stock?, perMemberLimit?, enabled? }
 *   POST  redemptions/:id/cancel         points back; a cashback's transfer cancelled at WeChat Pay
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import {
  accountParam,
  digits,
  INT_MAX,
  parseBody,
  parseParam,
  rowIdParam,
} from '../routes/validate.js'
import { cancelRedemption } from './actions/redemption-actions.js'
import {
  createReward,
  createRewardInput,
  updateReward,
  updateRewardInput,
} from './actions/reward-actions.js'
import { isRuleName, putRule, putRuleInput, putRuleProblem } from './actions/rule-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { allRewards, effectiveRules } from './reads/point-rules.js'
import { apiActor, someChange } from './route-helpers.js'

const rewardCode = digits(1, INT_MAX, 'must be a reward code')
const PAID_OUT = 'the cashback is paid out: it cannot be cancelled'

/** The rules, rewards and redemptions routes, to mount inside the operator API. */
export function rewardAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)

  app.get('/accounts/:appid/rules', async (c) => {
    return c.json({ rules: await effectiveRules(o.db, account(c)) })
  })

  app.put('/accounts/:appid/rules/:rule', async (c) => {
    const appid = account(c)
    const rule = c.req.param('rule')
    if (!isRuleName(rule))
      throw new HTTPException(400, { message: 'rule: lowercase letters, digits and _' })
    const body = await parseBody(c, putRuleInput)
    const problem = putRuleProblem(body)
    if (problem) throw new HTTPException(400, { message: problem })
    await putRule(o, apiActor(c), { ...body, appid, rule })
    return c.json({ rule, ...body })
  })

  app.get('/accounts/:appid/rewards', async (c) => {
    return c.json({ rewards: await allRewards(o.db, account(c), o.clock.now()) })
  })

  app.post('/accounts/:appid/rewards', async (c) => {
    const appid = account(c)
    const body = await parseBody(c, createRewardInput)
    const created = await createReward(o, apiActor(c), { ...body, appid })
    if (!created) throw new HTTPException(409, { message: `code: reward ${body.code} exists` })
    return c.json(created, 201)
  })

  app.patch('/accounts/:appid/rewards/:code', async (c) => {
    const appid = account(c)
    const code = parseParam(c, 'code', rewardCode)
    const body = someChange(await parseBody(c, updateRewardInput))
    const updated = await updateReward(o, apiActor(c), { ...body, appid, code })
    if (!updated) throw new HTTPException(404, { message: 'unknown reward' })
    return c.json(updated)
  })

  app.post('/accounts/:appid/redemptions/:id/cancel', async (c) => {
    const appid = account(c)
    const id = parseParam(c, 'id', rowIdParam)
    const result = await cancelRedemption(o, apiActor(c), { appid, id })
    switch (result.status) {
      case 'not_found':
        throw new HTTPException(404, { message: 'unknown redemption' })
      case 'paid_out':
        throw new HTTPException(409, { message: PAID_OUT })
      case 'no_shop':
        throw new HTTPException(409, {
          message: 'the cashback is being paid out (no shop configured)',
        })
      case 'pay_refused':
        throw new HTTPException(409, { message: `WeChat Pay refused the cancel: ${result.code}` })
      default:
        return c.json(result)
    }
  })

  return app
}
