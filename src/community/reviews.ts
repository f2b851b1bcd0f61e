/**
 * Product reviews (评价) and the `product_review` rule: a member reviews one of their paid, not
 * refunded orders once (an order is one product, so once per order item), with a rating of 1–5 and
 * a text of {@link REVIEW_TEXT_MIN}–{@link REVIEW_TEXT_MAX} characters, and earns the rule's points
 * within its cap (default 20, 3 a day). An operator may hide a review: the points it earned are
 * taken back (as much as the balance still holds; what it could not is left, and reported); and
 * show it again: what hiding took back is given back.
 *
 * Every award and reversal goes through the ledger (points-ledger.ts) with the member row locked,
 * and the review's unique order decides a race between two submissions.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { applyDelta, awardRule, lockMember, withMemberLocked } from './points-ledger.js'

/** The shortest and longest review text, in characters (code points), after trimming. */
export const REVIEW_TEXT_MIN = 5
export const REVIEW_TEXT_MAX = 500

/** The ledger label of a hidden review's reversal (not the rule: it must not count toward its cap). */
export const REVIEW_REVERSAL_RULE = 'product_review_hidden'
/** The ledger label of the points given back when a hidden review is shown again. */
export const REVIEW_RESTORE_RULE = 'product_review_unhidden'

/** The ledger key of a review's `n`th hide (1-based; the first keeps its original key). */
const hideKey = (id: number, n: number) =>
  n === 1 ? `${REVIEW_REVERSAL_RULE}:${id}` : `${REVIEW_REVERSAL_RULE}:${id}:${n}`

/** Control characters other than line breaks and tabs, and invisible direction marks. */
const FORBIDDEN = /(?![\t\n\r])\p{Cc}|[\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/u

/**
 * Trims and checks a review text: why it is refused, or the cleaned text.
 * @example reviewText('  很好喝，回购！ ') // { ok: true, text: '很好喝，回购！' }
 */
export function reviewText(
  raw: string,
): { ok: true; text: string } | { ok: false; reason: 'too_short' | 'too_long' | 'control' } {
  const text = raw.trim()
  const length = [...text].length
  if (FORBIDDEN.test(text)) return { ok: false, reason: 'control' }
  if (length < REVIEW_TEXT_MIN) return { ok: false, reason: 'too_short' }
  if (length > REVIEW_TEXT_MAX) return { ok: false, reason: 'too_long' }
  return { ok: true, text }
}

/** A review to submit (text already checked with {@link reviewText}). */
export interface ReviewInput {
  memberId: number
  outTradeNo: string
  /** 1–5. */
  rating: number
  text: string
  now: Date
  timeZone: string
}

/** What a submission did. */
export type ReviewResult =
  | {
      status: 'created'
      reviewId: number
      /** Points awarded (0 when the rule's cap or a disabled rule gave none). */
      points: number
      capped: boolean
      balance: number
    }
  /** Not the member's order; not paid or (partly) refunded; reviewed before. */
  | { status: 'not_found' | 'not_eligible' | 'already_reviewed' }

function checkRating(rating: number) {
  if (!Number.isInteger(rating) || rating < 1 || rating > 5)
    throw new RangeError('rating must be 1–5')
}

/** Submits a review of the member's order and awards `product_review` once. */
export async function submitReview(db: Kysely<Database>, r: ReviewInput): Promise<ReviewResult> {
  checkRating(r.rating)
  return withMemberLocked(db, r.memberId, (trx, member) => reviewOrder(trx, member, r))
}

/**
 * {@link submitReview} in the caller's transaction, for a member the caller has locked
 * (`lockMember`; `r.memberId` is not read): the mini program's writes lock the user's link first.
 */
export async function reviewOrder(
  trx: Transaction<Database>,
  member: Member,
  r: Omit<ReviewInput, 'memberId'>,
): Promise<ReviewResult> {
  checkRating(r.rating)
  const order = await trx
    .selectFrom('orders')
    .select(['id', 'appid', 'product_id', 'status', 'refunded_fen'])
    .where('out_trade_no', '=', r.outTradeNo)
    .where('member_id', '=', member.id)
    // Held until the award commits: a refund settling meanwhile waits for it.
    .forShare()
    .executeTakeFirst()
  if (!order) return { status: 'not_found' }
  if (order.status !== 'paid' || order.refunded_fen > 0) return { status: 'not_eligible' }
  const review = await trx
    .insertInto('product_reviews')
    .values({
      appid: order.appid,
      member_id: member.id,
      order_id: order.id,
      product_id: order.product_id,
      rating: r.rating,
      body: r.text,
      created_at: r.now,
    })
    .onConflict((oc) => oc.column('order_id').doNothing())
    .returning('id')
    .executeTakeFirst()
  if (!review) return { status: 'already_reviewed' }
  const outcome = await awardRule(trx, member, {
    appid: member.appid,
    memberId: member.id,
    rule: 'product_review',
    idempotencyKey: `product_review:${review.id}`,
    reference: `review:${review.id}`,
    now: r.now,
    timeZone: r.timeZone,
  })
  const points = outcome.status === 'applied' ? outcome.delta : 0
  if (points > 0)
    await trx.updateTable('product_reviews').set({ points }).where('id', '=', review.id).execute()
  return {
    status: 'created',
    reviewId: review.id,
    points,
    capped: outcome.status === 'capped',
    balance: outcome.balance,
  }
}

/**
 * Locks review `id` of the account for a change, and its member — the member first, as a
 * submission does: no lock-order cycle with one. Undefined when the account has no such review.
 * A 绑定 moves a mini-program member's reviews to the follower with both members locked
 * (src/shop/member-moves.ts): a review found on the member it left is locked again on the follower.
 */
async function lockReview(trx: Transaction<Database>, r: { appid: string; id: number }) {
  const found = await trx
    .selectFrom('product_reviews')
    .select('member_id')
    .where('id', '=', r.id)
    .where('appid', '=', r.appid)
    .executeTakeFirst()
  if (!found) return undefined
  let memberId = found.member_id
  for (let tries = 0; tries < 3; tries++) {
    const member = await lockMember(trx, memberId)
    const review = await trx
      .selectFrom('product_reviews')
      .select(['member_id', 'status', 'points', 'reversed_points', 'hides'])
      .where('id', '=', r.id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    if (review.member_id === member.id) return { member, review }
    memberId = review.member_id
  }
  throw new Error(`review ${r.id}: its member keeps changing`)
}

/** A hide's or unhide's ledger entry (never counted as earned); it must apply. */
async function reviewEntry(
  trx: Transaction<Database>,
  member: Member,
  h: { id: number; now: Date; timeZone: string },
  rule: string,
  idempotencyKey: string,
  delta: number,
) {
  const change = { appid: member.appid, memberId: member.id, rule, idempotencyKey }
  const outcome = await applyDelta(
    trx,
    member,
    { ...change, reference: `review:${h.id}`, now: h.now, timeZone: h.timeZone, earned: false },
    delta,
  )
  if (outcome.status !== 'applied') throw new Error(`${rule} ${outcome.status}`)
}

/** What hiding a review did. */
export type HideReviewResult =
  | {
      status: 'hidden'
      /** Points taken back, and those the balance no longer held (spent meanwhile). */
      reversed: number
      shortfall: number
      member: Pick<Member, 'id' | 'openid'>
    }
  | { status: 'not_found' | 'already_hidden' }

/**
 * Hides review `id` of the account and takes its points back, in the caller's transaction: the
 * member row is locked, then the review row; a second hide finds it hidden and changes nothing.
 */
export async function hideReview(
  trx: Transaction<Database>,
  h: { appid: string; id: number; now: Date; timeZone: string },
): Promise<HideReviewResult> {
  const locked = await lockReview(trx, h)
  if (!locked) return { status: 'not_found' }
  const { member, review } = locked
  if (review.status === 'hidden') return { status: 'already_hidden' }
  const reversed = Math.min(review.points, member.points_balance)
  if (reversed > 0)
    await reviewEntry(
      trx,
      member,
      h,
      REVIEW_REVERSAL_RULE,
      hideKey(h.id, review.hides + 1),
      -reversed,
    )
  await trx
    .updateTable('product_reviews')
    .set({ status: 'hidden', hidden_at: h.now, reversed_points: reversed, hides: review.hides + 1 })
    .where('id', '=', h.id)
    .execute()
  return {
    status: 'hidden',
    reversed,
    shortfall: review.points - reversed,
    member: { id: member.id, openid: member.openid },
  }
}

/** What showing a hidden review again did. */
export type UnhideReviewResult =
  | {
      status: 'visible'
      /** Points given back: what its hide took back. */
      restored: number
      member: Pick<Member, 'id' | 'openid'>
    }
  | { status: 'not_found' | 'already_visible' }

/**
 * Shows hidden review `id` again and gives back the points its hide took (not counted as earned,
 * as a refund), in the caller's transaction, locking as {@link hideReview} does.
 */
export async function unhideReview(
  trx: Transaction<Database>,
  h: { appid: string; id: number; now: Date; timeZone: string },
): Promise<UnhideReviewResult> {
  const locked = await lockReview(trx, h)
  if (!locked) return { status: 'not_found' }
  const { member, review } = locked
  if (review.status === 'visible') return { status: 'already_visible' }
  const restored = review.reversed_points
  if (restored > 0) {
    const key = `${REVIEW_RESTORE_RULE}:${h.id}:${review.hides}`
    await reviewEntry(trx, member, h, REVIEW_RESTORE_RULE, key, restored)
  }
  await trx
    .updateTable('product_reviews')
    .set({ status: 'visible', hidden_at: null, reversed_points: 0 })
    .where('id', '=', h.id)
    .execute()
  return { status: 'visible', restored, member: { id: member.id, openid: member.openid } }
}

/**
 * An account's reviews, newest first: a product's (`sku`) and/or by status — the mini program's
 * product page asks for a product's visible ones, the operator API for any.
 */
export async function listReviews(
  db: Kysely<Database>,
  q: {
    appid: string
    sku?: string
    status?: 'visible' | 'hidden'
    limit: number
    /** Only reviews older than this id (the console's pages). */
    before?: number
  },
) {
  return db
    .selectFrom('product_reviews')
    .innerJoin('products', 'products.id', 'product_reviews.product_id')
    .innerJoin('members', 'members.id', 'product_reviews.member_id')
    .select([
      'product_reviews.id',
      'members.openid',
      'members.appid as member_appid',
      'members.display_name',
      'products.sku',
      'products.name as product_name',
      'product_reviews.rating',
      'product_reviews.body',
      'product_reviews.status',
      'product_reviews.points',
      'product_reviews.reversed_points',
      'product_reviews.created_at',
      'product_reviews.hidden_at',
    ])
    .where('product_reviews.appid', '=', q.appid)
    .$if(q.sku !== undefined, (w) => w.where('products.sku', '=', q.sku!))
    .$if(q.status !== undefined, (w) => w.where('product_reviews.status', '=', q.status!))
    .$if(!!q.before, (w) => w.where('product_reviews.id', '<', q.before!))
    .orderBy('product_reviews.id', 'desc')
    .limit(q.limit)
    .execute()
}
