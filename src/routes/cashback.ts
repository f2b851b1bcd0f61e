/**
 * The member's cashback in the mini program, under `/api/mp/cashbacks` (after the session check) —
 * the transfers paid to the signed-in openid (the payee, whichever member redeemed them):
 *
 *   GET cashbacks        → { cashbacks } newest first; the payee's transfers that are due are
 *                          sent first, so a new one has its package when the page opens
 *   GET cashbacks/:no    → { cashback } — after `wx.requestMerchantTransfer` returns (only a
 *                          hint), the page asks here and we ask WeChat Pay, at most once per
 *                          transfer every few seconds
 *
 * `confirm` is `{mchId, appId, package}` for `wx.requestMerchantTransfer`, given only to the payee
 * and only while the bill waits for them.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { translator } from '../bot/i18n.js'
import type { Transfer } from '../db/schema.js'
import { CONFIRM_WINDOW_MS } from '../shop/transfer-bills.js'
import { applyBill, runTransferQueue, type TransferDeps } from '../shop/transfers.js'
import type { ShopRouteOptions } from './shop.js'

/** How often a member's page may have us ask WeChat Pay about one transfer. */
export const TRANSFER_QUERY_INTERVAL_MS = 5000

export function cashbackRoutes(
  o: ShopRouteOptions,
): Hono<{ Variables: { memberId: number; openid: string } }> {
  const { db, shop } = o
  const app = new Hono<{ Variables: { memberId: number; openid: string } }>()
  const deps: TransferDeps = {
    db,
    shop,
    timeZone: o.timeZone,
    logger: o.logger,
    t: translator(o.locale ?? 'zh-CN'),
  }

  const json = (t: Transfer) => ({
    outBillNo: t.out_bill_no,
    amountFen: t.amount_fen,
    state: t.state,
    failReason: t.fail_reason,
    createdAt: t.created_at,
    /** The end of the member's confirmation window (once WeChat Pay made the bill). */
    confirmBy: t.accepted_at ? new Date(t.accepted_at.getTime() + CONFIRM_WINDOW_MS) : null,
    confirm:
      t.state === 'wait_user_confirm' && t.package_info
        ? { mchId: shop.gateway.mchid, appId: t.pay_appid, package: t.package_info }
        : null,
  })

  app.get('/', async (c) => {
    const now = o.clock.now()
    await runTransferQueue(deps, now, { payee: c.var.openid, limit: 5 })
    const rows = await db
      .selectFrom('transfers')
      .selectAll()
      .where('pay_appid', '=', shop.settings.mpAppid)
      .where('openid', '=', c.var.openid)
      .orderBy('id', 'desc')
      .limit(20)
      .execute()
    return c.json({ cashbacks: rows.map(json) })
  })

  app.get('/:no', async (c) => {
    const now = o.clock.now()
    const find = () =>
      db
        .selectFrom('transfers')
        .selectAll()
        .where('out_bill_no', '=', c.req.param('no'))
        .where('pay_appid', '=', shop.settings.mpAppid)
        .where('openid', '=', c.var.openid)
        .executeTakeFirst()
    const row = await find()
    if (!row) throw new HTTPException(404, { message: 'no such cashback' })
    if (row.state === 'pending') {
      await runTransferQueue(deps, now, { payee: c.var.openid, limit: 5 })
    } else if (row.state !== 'success' && row.state !== 'fail' && row.state !== 'cancelled') {
      // One query per transfer every few seconds, whoever polls (a conditional update decides).
      const ask = await db
        .updateTable('transfers')
        .set({ queried_at: now })
        .where('id', '=', row.id)
        .where((eb) =>
          eb.or([
            eb('queried_at', 'is', null),
            eb('queried_at', '<=', new Date(now.getTime() - TRANSFER_QUERY_INTERVAL_MS)),
          ]),
        )
        .returning('id')
        .executeTakeFirst()
      if (ask) {
        const bill = await shop.gateway.transferQuery(row.out_bill_no).catch((error: unknown) => {
          o.logger.warn('transfer query failed', { outBillNo: row.out_bill_no, error })
          return null
        })
        if (bill) await applyBill(deps, bill, now)
      }
    }
    return c.json({ cashback: json((await find())!) })
  })

  return app
}
