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
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import type { Clock } from '../clock.js'
import { audit } from '../community/audit-log.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import {
  day,
  digits,
  parseBody,
  parseParam,
  parseQuery,
  rowIdParam,
  shopAccountGuard,
} from '../routes/validate.js'
import type { Shop } from '../shop/maintenance.js'
import { latestBillDate, reconcileDay } from '../shop/reconcile.js'
import {
  listMismatches,
  mismatchView,
  reconciliationReport,
} from '../shop/reconciliation-report.js'

const ACTOR = 'operator'
const reportQuery = v.object({ date: v.optional(day()) })
const runBody = v.strictObject({
  date: day(),
  kinds: v.optional(
    v.pipe(
      v.array(v.picklist(['trade', 'fundflow'], 'trade or fundflow')),
      v.minLength(1, 'at least one'),
    ),
  ),
})
const listQuery = v.object({
  status: v.optional(v.picklist(['open', 'resolved', 'all'], 'open, resolved or all'), 'open'),
  limit: v.optional(digits(1, 500, 'must be 1–500'), '100'),
})
const resolveBody = v.strictObject({
  status: v.picklist(['open', 'resolved'], 'open or resolved'),
  note: v.pipe(v.string(), v.trim(), v.minLength(1, 'is required'), v.maxLength(500)),
})

export function reconciliationAdminRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  shop: Shop
}): Hono {
  const app = new Hono()
  const { db, shop } = o
  const appid = shop.settings.appid
  const mchid = shop.gateway.mchid
  const onlyShopAccount = shopAccountGuard(appid)

  app.get('/accounts/:appid/shop/reconciliation', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const { date } = parseQuery(c, reportQuery)
    return c.json(
      await reconciliationReport(db, { mchid, date: date ?? latestBillDate(o.clock.now()) }),
    )
  })

  app.post('/accounts/:appid/shop/reconciliation', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, runBody)
    const now = o.clock.now()
    const latest = latestBillDate(now)
    if (b.date > latest)
      return c.json(
        {
          code: 'BILL_NOT_READY',
          message: `WeChat Pay has bills up to ${latest} now (a day's bill after 10:00 Beijing time the next day)`,
        },
        409,
      )
    const outcomes = await reconcileDay(db, shop.gateway, shop.settings, {
      date: b.date,
      kinds: b.kinds,
      now,
      logger: o.logger,
    })
    await audit(db, {
      appid,
      actor: ACTOR,
      action: 'reconciliation.run',
      target: b.date,
      details: { kinds: b.kinds ?? ['trade', 'fundflow'], outcomes },
      now,
      clientAddress: c.var.clientAddress,
    })
    return c.json({ outcomes, ...(await reconciliationReport(db, { mchid, date: b.date })) })
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
    const b = await parseBody(c, resolveBody)
    const now = o.clock.now()
    const updated = await db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('reconciliation_mismatches')
        .set({
          status: b.status,
          note: b.note,
          resolved_at: b.status === 'resolved' ? now : null,
          updated_at: now,
        })
        .where('id', '=', id)
        .where('run_id', 'in', (eb) =>
          eb.selectFrom('reconciliation_runs').select('id').where('mchid', '=', mchid),
        )
        .returningAll()
        .executeTakeFirst()
      if (row)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'reconciliation.resolve',
          target: String(id),
          details: b,
          now,
          clientAddress: c.var.clientAddress,
        })
      return row
    })
    if (!updated) throw new HTTPException(404, { message: 'no such mismatch' })
    return c.json(mismatchView(updated))
  })

  return app
}
