/**
 * What a WeChat Pay notification is about, and the shape its decrypted resource must have
 * (../shared/protocol/wechatpay-v3.md §3.4, §4; merchant transfers' MCHTRANSFER.BILL.FINISHED).
 * Every field the shop reads is checked for its type, and every string for NUL (PostgreSQL text
 * refuses it): a signed notification that is not this shape is refused (4xx) before anything is
 * written, instead of failing in the database as a 500 that WeChat Pay retries for a day.
 */
import * as v from 'valibot'
import type { Transaction, TransferBill, TransferBillState } from './gateway.js'

/** Text a database column can hold: no NUL (U+0000). */
export const text = (max: number) =>
  v.pipe(
    v.string(),
    v.check((s) => !s.includes('\u0000'), 'must not contain NUL characters'),
    v.maxLength(max, `is longer than ${max}`),
  )
/** A merchant or WeChat Pay number a row is found by (`out_trade_no`, `out_refund_no` …). */
const reference = v.pipe(text(128), v.minLength(1, 'is required'))
/** Fen, as an `integer` column holds them. */
const fen = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(2_147_483_647))

const transaction = v.object({
  out_trade_no: reference,
  trade_state: text(32),
  transaction_id: v.optional(text(64)),
  appid: v.optional(text(64)),
  mchid: v.optional(text(64)),
  amount: v.optional(
    v.object({
      total: v.optional(fen),
      payer_total: v.optional(fen),
      currency: v.optional(text(16)),
    }),
  ),
}) satisfies v.GenericSchema<unknown, Transaction>

const refund = v.object({
  out_refund_no: reference,
  refund_status: v.optional(text(32)),
  refund_id: v.optional(text(64)),
})

const transferBill = v.object({
  out_bill_no: reference,
  // A state WeChat Pay has not documented is applyBill's to ignore (logged, nothing changes).
  state: v.pipe(
    text(32),
    v.transform((s) => s as TransferBillState),
  ),
  transfer_bill_no: v.optional(text(64)),
  package_info: v.optional(text(2048)),
  fail_reason: v.optional(text(500)),
  mch_id: v.optional(text(64)),
  openid: v.optional(text(128)),
  transfer_amount: v.optional(fen),
}) satisfies v.GenericSchema<unknown, TransferBill>

/** A notification's subject, with its resource checked. */
export type NotificationResource =
  | { kind: 'transaction'; resource: Transaction }
  | { kind: 'refund'; resource: v.InferOutput<typeof refund> }
  | { kind: 'transfer'; resource: TransferBill }
  /** Another event (logged and accepted): its resource is not read. */
  | { kind: 'other'; resource: Record<string, unknown> }

/** The resource checked against `schema`, as the subject `kind`. */
function checked<K extends NotificationResource['kind'], S extends v.GenericSchema>(
  kind: K,
  schema: S,
  resource: unknown,
): { kind: K; resource: v.InferOutput<S> } | { problems: string } {
  const result = v.safeParse(schema, resource, { abortPipeEarly: true })
  if (result.success) return { kind, resource: result.output }
  const problems = result.issues.map((i) => {
    const path = v.getDotPath(i)
    return `${path ? `resource.${path}` : 'resource'}: ${i.message}`
  })
  return { problems: problems.join('; ') }
}

/**
 * The subject of a notification by `event_type` and `resource.original_type`, and its decrypted
 * resource checked against that subject's schema.
 * @returns the subject, or the problems (`path: message`, joined) when the resource is not its shape
 */
export function readResource(
  eventType: string,
  originalType: string,
  resource: unknown,
): NotificationResource | { problems: string } {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource))
    return { problems: 'resource: must be a JSON object' }
  if (eventType === 'TRANSACTION.SUCCESS' && originalType === 'transaction')
    return checked('transaction', transaction, resource)
  if (eventType.startsWith('REFUND.') && originalType === 'refund')
    return checked('refund', refund, resource)
  if (eventType.startsWith('MCHTRANSFER.') && originalType === 'mch_payment')
    return checked('transfer', transferBill, resource)
  return { kind: 'other', resource: resource as Record<string, unknown> }
}
