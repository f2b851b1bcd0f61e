/**
 * An operator hides a product review: it leaves the product page and the `product_review` points it
 * earned are taken back (src/community/reviews.ts), audited as `review.hide` in the same
 * transaction; showing it again gives them back, audited as `review.unhide`.
 */
import {
  type HideReviewResult,
  hideReview as hide,
  type UnhideReviewResult,
  unhideReview as unhide,
} from '../../community/reviews.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** Hides review `id` of the account; a second call answers `already_hidden` and audits nothing. */
export async function hideReview(
  deps: ActionDeps,
  actor: Actor,
  input: { appid: string; id: number },
): Promise<HideReviewResult> {
  const now = deps.clock.now()
  const step = {
    appid: input.appid,
    actor,
    action: 'review.hide',
    target: String(input.id),
    now,
  } satisfies AuditedStep
  return auditedAction<HideReviewResult>(deps.db, step, async (trx) => {
    const result = await hide(trx, { ...input, now, timeZone: deps.timeZone })
    if (result.status !== 'hidden') return { result }
    const { reversed, shortfall, member } = result
    return { result, details: { member: member.openid, reversed, shortfall } }
  })
}

/** Shows hidden review `id` again; a second call answers `already_visible` and audits nothing. */
export async function unhideReview(
  deps: ActionDeps,
  actor: Actor,
  input: { appid: string; id: number },
): Promise<UnhideReviewResult> {
  const now = deps.clock.now()
  const step = {
    appid: input.appid,
    actor,
    action: 'review.unhide',
    target: String(input.id),
    now,
  } satisfies AuditedStep
  return auditedAction<UnhideReviewResult>(deps.db, step, async (trx) => {
    const result = await unhide(trx, { ...input, now, timeZone: deps.timeZone })
    if (result.status !== 'visible') return { result }
    return { result, details: { member: result.member.openid, restored: result.restored } }
  })
}
