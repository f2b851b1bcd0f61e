/**
 * Reconciliation in the operator API (mounted inside /admin/api with the shop, behind its token):
 *
 *   GET   shop/reconciliation?date=YYYY-MM-DD     a day's report (default: the newest bill day)
 *   POST  shop/reconciliation {date, kinds?}      reconciles a day now (again), returns the report
 *   GET   shop/reconciliation/mismatches?status=open|resolved|all&limit=
 *   PATCH shop/reconciliation/mismatches/:id {status, note}
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import {
  day,
  pageLimit,
  parseBody,
  parseParam,
  parseQuery,
  rowIdParam,
  shopAccountGuard,
} from '../routes/validate.js'
import type { Shop } from '../shop/maintenance.js'
import { latestBillDate } from '../shop/reconcile.js'
import { listMismatches, reconciliationReport } from '../shop/reconciliation-report.js'
import {
  resolveMismatch,
  resolveMismatchInput,
  runReconciliation,
  runReconciliationInput,
} from './actions/reconciliation-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { apiActor } from './route-helpers.js'

const reportQuery = v.object({ date: v.optional(day()) })
const listQuery = v.object({
  status: v.optional(v.picklist(['open', 'resolved', 'all'], 'open, resolved or all'), 'open'),
  limit: pageLimit(500, 100),
})

/** The reconciliation routes, to mount inside the operator API when a shop is configured. */
export function reconciliationAdminRoutes(o: OperatorDeps & { shop: Shop }): Hono {
  const app = new Hono()
  const { db, shop } = o
  const mchid = shop.gateway.mchid
  const onlyShopAccount = shopAccountGuard(shop.settings.appid)

  app.get('/accounts/:appid/shop/reconciliation', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const { date } = parseQuery(c, reportQuery)
    return c.json(
      await reconciliationReport(db, { mchid, date: date ?? latestBillDate(o.clock.now()) }),
    )
  })

  app.post('/accounts/:appid/shop/reconciliation', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, runReconciliationInput)
    const run = await runReconciliation(o, apiActor(c), b)
    if (run.status === 'not_ready')
      return c.json(
        {
          code: 'BILL_NOT_READY',
          message: `WeChat Pay has bills up to ${run.latest} now (a day's bill after 10:00 Beijing time the next day)`,
        },
        409,
      )
    const report = await reconciliationReport(db, { mchid, date: b.date })
    return c.json({ outcomes: run.outcomes, ...report })
  })

  app.get('/accounts/:appid/shop/reconciliation/mismatches', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const q = parseQuery(c, listQuery)
    const status = q.status === 'all' ? undefined : q.status
    return c.json({ mismatches: await listMismatches(db, { mchid, status, limit: q.limit }) })
  })

  app.patch('/accounts/:appid/shop/reconciliation/mismatches/:id', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const id = parseParam(c, 'id', rowIdParam)
    const b = await parseBody(c, resolveMismatchInput)
    const updated = await resolveMismatch(o, apiActor(c), { ...b, id })
    if (!updated) throw new HTTPException(404, { message: 'no such mismatch' })
    return c.json(updated)
  })

  return app
}
