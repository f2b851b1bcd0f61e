/**
 * Members and their points in the operator API (inside /admin/api, behind its bearer token). A
 * member is a follower of the account, else a member of its mini program; `?mp=1` names the
 * mini-program member only (route-helpers.ts `memberParam`).
 *
 *   POST  members/:openid/points        { delta, reason, idempotencyKey? }   grant (+) or deduct (−);
 *                                       a follower is told (customer-service text via the outbox);
 *                                       409 for a mini-program member a 绑定 linked to a follower
 *   GET   members/:openid/ledger?limit=&before=
 */
import { Hono } from 'hono'
import * as v from 'valibot'
import { INT_MAX, pageLimit, parseBody, parseQuery, rowIdParam } from '../routes/validate.js'
import { grantPoints, grantPointsInput } from './actions/points-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { LEDGER_PAGE_MAX, memberLedger } from './reads/member-ledger.js'
import { apiActor, memberParam, refuseLinked } from './route-helpers.js'

const ledgerQuery = v.object({
  limit: pageLimit(LEDGER_PAGE_MAX),
  before: v.optional(rowIdParam),
})

/** The members routes, to mount inside the operator API. */
export function memberAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const memberOf = memberParam(o)

  app.post('/accounts/:appid/members/:openid/points', async (c) => {
    const { appid, member, miniProgram } = await memberOf(c)
    if (miniProgram) await refuseLinked(o.db, member)
    const body = await parseBody(c, grantPointsInput)
    const outcome = await grantPoints(o, apiActor(c), { ...body, appid, member })
    if (outcome.status === 'limit')
      return c.json(
        {
          code: 'BALANCE_LIMIT',
          message: `delta: the balance or lifetime points would exceed ${INT_MAX}`,
          status: outcome.status,
          balance: outcome.balance,
        },
        409,
      )
    // The API's token holder has no per-day limit (grantPoints is called without `dailyLimit`).
    if (outcome.status === 'over_limit') throw new Error('no per-day grant limit applies here')
    const payload = { status: outcome.status, balance: outcome.balance, level: outcome.level.key }
    if (outcome.status === 'insufficient')
      return c.json(
        { code: 'INSUFFICIENT_POINTS', message: `balance is ${outcome.balance}`, ...payload },
        409,
      )
    return c.json(payload, outcome.status === 'applied' ? 201 : 200)
  })

  app.get('/accounts/:appid/members/:openid/ledger', async (c) => {
    const { member } = await memberOf(c)
    return c.json(await memberLedger(o.db, member, parseQuery(c, ledgerQuery)))
  })

  return app
}
