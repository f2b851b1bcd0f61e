/** An operator refunds a paid order (partly or fully), once per refund number. */
import * as v from 'valibot'
import type { Logger } from '../../logger.js'
import type { Shop } from '../../shop/maintenance.js'
import { type RefundRequest, requestRefund } from '../../shop/refunds.js'
import { sha256Hex } from '../../wechat/crypto.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'
import { fen } from './product-actions.js'

/** The input of {@link refundOrder} (`POST shop/orders/:no/refunds`). */
export const refundOrderInput = v.strictObject({
  amountFen: fen,
  reason: v.pipe(v.string(), v.trim(), v.minLength(1, 'is required'), v.maxLength(80)),
  outRefundNo: v.optional(
    v.pipe(v.string(), v.regex(/^[\w\-|*@]{1,64}$/, '1–64 of [A-Za-z0-9_-|*@]')),
  ),
})
export type RefundOrderInput = v.InferOutput<typeof refundOrderInput>

/**
 * The refund number an idempotency key stands for: the same order and key are always the same
 * refund (`RK-` and 32 hex digits).
 */
export async function refundNumber(outTradeNo: string, key: string): Promise<string> {
  return `RK-${(await sha256Hex(`${outTradeNo}\n${key}`)).slice(0, 32)}`
}

/**
 * Records a refund of order `outTradeNo` and sends it to WeChat Pay (src/shop/refunds.ts); a
 * refund number seen before answers that refund (`existing`). Audits `order.refund` after a new
 * one: the refund commits on its own and calls WeChat Pay, which no transaction may be held across.
 */
export async function refundOrder(
  deps: Pick<ActionDeps, 'db' | 'clock'> & { shop: Shop; logger: Logger },
  actor: Actor,
  input: RefundOrderInput & { outTradeNo: string; outRefundNo: string },
): Promise<RefundRequest> {
  const { outTradeNo, outRefundNo, ...b } = input
  const { shop } = deps
  const now = deps.clock.now()
  const step = {
    appid: shop.settings.appid,
    actor,
    action: 'order.refund',
    target: outTradeNo,
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, { ...step, commit: 'after' }, async (db) => {
    const request = { outTradeNo, amountFen: b.amountFen, reason: b.reason, outRefundNo, now }
    const result = await requestRefund(db, shop.gateway, shop.settings, request, deps.logger)
    if (result.status !== 'requested') return { result }
    return { result, details: { ...b, outRefundNo: result.outRefundNo } }
  })
}
