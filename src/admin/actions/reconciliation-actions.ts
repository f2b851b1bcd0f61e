/** An operator reconciles a day's WeChat Pay bills now, and resolves what did not match. */
import * as v from 'valibot'
import type { Logger } from '../../logger.js'
import { day } from '../../routes/validate.js'
import type { Shop } from '../../shop/maintenance.js'
import { latestBillDate, type ReconcileOutcome, reconcileDay } from '../../shop/reconcile.js'
import { mismatchView } from '../../shop/reconciliation-report.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** The input of {@link runReconciliation} (`POST shop/reconciliation`). */
export const runReconciliationInput = v.strictObject({
  date: day(),
  kinds: v.optional(
    v.pipe(
      v.array(v.picklist(['trade', 'fundflow'], 'trade or fundflow')),
      v.minLength(1, 'at least one'),
    ),
  ),
})
export type RunReconciliationInput = v.InferOutput<typeof runReconciliationInput>

/** The input of {@link resolveMismatch} (`PATCH shop/reconciliation/mismatches/:id`). */
export const resolveMismatchInput = v.strictObject({
  status: v.picklist(['open', 'resolved'], 'open or resolved'),
  note: v.pipe(v.string(), v.trim(), v.minLength(1, 'is required'), v.maxLength(500)),
})
export type ResolveMismatchInput = v.InferOutput<typeof resolveMismatchInput>

type ShopDeps = Pick<ActionDeps, 'db' | 'clock'> & { shop: Shop; logger: Logger }

/**
 * What a run did: each bill's outcome (the day's report: `reconciliationReport`), or `not_ready`
 * when WeChat Pay has no bill for the day yet (`latest`: the newest day it has).
 */
export type RunReconciliationResult =
  | { status: 'done'; outcomes: ReconcileOutcome[] }
  | { status: 'not_ready'; latest: string }

/**
 * Reconciles a day (again) now: downloads its bills and compares them with the orders and refunds
 * (src/shop/reconcile.ts). Audits `reconciliation.run` after: the run commits per bill and calls
 * WeChat Pay, which no transaction may be held across.
 */
export async function runReconciliation(
  deps: ShopDeps,
  actor: Actor,
  input: RunReconciliationInput,
): Promise<RunReconciliationResult> {
  const { shop } = deps
  const now = deps.clock.now()
  const latest = latestBillDate(now)
  if (input.date > latest) return { status: 'not_ready', latest }
  const step = {
    appid: shop.settings.appid,
    actor,
    action: 'reconciliation.run',
    target: input.date,
    now,
  } satisfies AuditedStep
  return auditedAction<RunReconciliationResult>(
    deps.db,
    { ...step, commit: 'after' },
    async (db) => {
      const { date, kinds } = input
      const run = { date, kinds, now, logger: deps.logger }
      const outcomes = await reconcileDay(db, shop.gateway, shop.settings, run)
      const details = { kinds: kinds ?? ['trade', 'fundflow'], outcomes }
      return { result: { status: 'done', outcomes }, details }
    },
  )
}

/**
 * Marks a mismatch of the shop's merchant resolved (or open again) with a note; undefined when it
 * has no such mismatch. Audits `reconciliation.resolve`.
 */
export async function resolveMismatch(
  deps: ShopDeps,
  actor: Actor,
  input: ResolveMismatchInput & { id: number },
): Promise<ReturnType<typeof mismatchView> | undefined> {
  const { id, ...b } = input
  const { appid } = deps.shop.settings
  const mchid = deps.shop.gateway.mchid
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'reconciliation.resolve',
    target: String(id),
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
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
    return { result: row && mismatchView(row), details: row && b }
  })
}
