/**
 * An operator cancels a redemption: the points come back and the stock is restored. A cashback
 * whose transfer may still pay out is cancelled at WeChat Pay first (only before the member
 * confirms); the redemption is cancelled, and the points come back, when the bill is.
 */
import type { Translate } from '../../bot/i18n.js'
import { cancelRedemption as returnIssued } from '../../community/rewards.js'
import type { TransferState } from '../../db/schema.js'
import type { Logger } from '../../logger.js'
import { PayApiError } from '../../pay/gateway.js'
import type { Shop } from '../../shop/maintenance.js'
import { cancelCashback } from '../../shop/transfers.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** What a cancellation did. */
export type CancelRedemptionResult =
  /** The redemption is cancelled now, or was before. */
  | { status: 'cancelled' | 'already_cancelled' }
  /** A cashback: its transfer's state afterwards (`cancelling` until WeChat Pay confirms). */
  | { status: 'cancelled' | 'cancelling'; transfer: TransferState | 'not_found' }
  /** No such redemption; a cashback already paid out; one being paid out with no shop here. */
  | { status: 'not_found' | 'paid_out' | 'no_shop' }
  /** WeChat Pay refused to cancel the transfer (its error code). */
  | { status: 'pay_refused'; code: string }

/**
 * Cancels redemption `id` and audits `redemption.cancel` (details `{}`, or `{ transfer }` for a
 * cashback). The entry is written right after the cancellation commits, not inside it: the
 * cancellation locks the member in its own transaction (src/community/rewards.ts) and a cashback's
 * is a call to WeChat Pay, which no transaction may be held across.
 */
export async function cancelRedemption(
  deps: ActionDeps & { logger: Logger; t: Translate; shop?: Shop },
  actor: Actor,
  input: { appid: string; id: number },
): Promise<CancelRedemptionResult> {
  const { appid, id } = input
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'redemption.cancel',
    target: String(id),
    now,
  } satisfies AuditedStep
  return auditedAction<CancelRedemptionResult>(
    deps.db,
    { ...step, commit: 'after' },
    async (db) => {
      const q = { appid, redemptionId: id, now, timeZone: deps.timeZone }
      const issued = await returnIssued(db, q)
      if (issued === 'cancelled') return { result: { status: issued }, details: {} }
      if (issued !== 'transfer_in_progress') return { result: { status: issued } }
      if (!deps.shop) return { result: { status: 'no_shop' } }
      const shop = deps.shop
      const { timeZone, logger, t } = deps
      const transfer = await cancelCashback({ db, shop, timeZone, logger, t }, id, now).catch(
        (error: unknown) => {
          if (error instanceof PayApiError) return { refused: error.code }
          throw error
        },
      )
      if (typeof transfer === 'object')
        return { result: { status: 'pay_refused', code: transfer.refused } }
      if (transfer === 'success') return { result: { status: 'paid_out' } }
      const status = transfer === 'cancelled' ? ('cancelled' as const) : ('cancelling' as const)
      return { result: { status, transfer }, details: { transfer } }
    },
  )
}
