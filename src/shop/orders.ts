/**
 * Orders: created with the stock (and a group-buy seat) reserved in one transaction — a sold-out
 * sale answered from one read before it (sold-out.ts) —, then prepaid through the
 * {@link PayGateway}; closed — and the reservation released — by one conditional update
 * when they expire unpaid. Payments are applied by one conditional update with every grant in the
 * same transaction (first_purchase and purchase points — frozen until the refund window ends —,
 * membership, group-buy progress, the member's purchase count), once per notification
 * id and once per order, whichever way they arrive (notification or query).
 *
 * Lock order everywhere: the mini-program user's link (mp_users), member, then order, then group
 * buy, then product — the product's row last: a reservation, a close, a failing group buy, a
 * payment refunded because its group failed and a flagged order's full refund (refunds.ts) all
 * take the group's row before the product's; a
 * failing group buy takes its orders (in id order) before its row, as a close and a 绑定 moving
 * the leader's orders (mp-link.ts) do — so none waits on another in a circle
 * (stock-release.test.ts). Before all of them, and only there: the accounts' activity-days gates a
 * 绑定 takes (facts.ts `lockActivityDays`, as a day's build does first thing), so that a 绑定
 * waiting there for a build holds none of these rows.
 *
 * The member's row is taken `FOR UPDATE` here (orders, payments, refunds and the purchase-grant
 * functions of migrations/0035 and 0066) and by a 绑定, which moves rows keyed on the member
 * (mp-link.ts) and so must also exclude the `FOR KEY SHARE` of their foreign-key checks; the
 * check-in, the make-up and the ledger take it `FOR NO KEY UPDATE` (points-ledger.ts, migrations/0074),
 * which waits for either but lets the nightly build's `member_days` inserts (their foreign-key
 * checks) pass. The two strengths conflict with each other, so the order above holds for both.
 *
 * A group-buy seat (`joined`) is an order's from its reservation until it closes unpaid
 * ({@link closeOrder}) or, flagged, until it is refunded in full (settleRefund, refunds.ts) — each
 * a move out of its status that happens once; only a payment applied as paid counts toward the
 * group (`paid`), so a flagged order never completes one.
 *
 * An order records whether it took a unit (`stock_taken`); a unit is given back only by
 * {@link releaseStock}, which clears the mark in the statement that adds the unit, so each unit
 * comes back once, and only if it was taken.
 */
import { type Kysely, sql, type Transaction as Trx } from 'kysely'
import type { Translate as TranslateFn } from '../bot/i18n.js'
import { awardBadges } from '../community/badges.js'
import type { Database, Order, OrderStatus } from '../db/schema.js'
import {
  PayApiError,
  type PayGateway,
  type RequestPayment,
  type Transaction,
} from '../pay/gateway.js'
import { randomToken } from '../wechat/crypto.js'
import { activeMembership, onSale, priceFor, type ShopSettings } from './catalog.js'
import { linkedMemberId } from './linked-member.js'
import { grantPurchase } from './purchase-grants.js'
import { provenSoldOut, type SoldOutQuestion } from './sold-out.js'

type Db = Kysely<Database> | Trx<Database>

/** Why an order was not created. */
export type OrderRefusal =
  | 'not_found'
  | 'disabled'
  | 'not_started'
  | 'ended'
  | 'sold_out'
  | 'limit_reached'
  | 'group_not_found'
  | 'group_closed'
  | 'group_full'
  /** The client key was used for another product or group buy. */
  | 'client_key_reused'

export type CreateOrderResult =
  | { status: 'created' | 'existing'; order: Order; payment: RequestPayment | null }
  | { status: OrderRefusal }
  /**
   * The prepay got no answer of WeChat Pay's own (SYSTEM_ERROR, 429, a timeout, a lost answer, a
   * 200 that does not verify): the order stays pending, its stock held until it expires; the same
   * client key asks again (same out_trade_no, same parameters: the same prepay_id).
   */
  | { status: 'payment_unavailable'; order: Order; error: unknown }
  /**
   * WeChat Pay refused the prepay (a 4xx of its own): a new order is closed, its stock back; an
   * existing one is left as it is (WeChat Pay may have it paid: ask it, protocol §4).
   */
  | { status: 'payment_refused'; order: Order; error: unknown }
  /**
   * The client key's order is pending past its expiry (its `time_expire`): not prepaid again.
   * The caller takes the expiry step (maintenance.ts `expireOrder`: asked about, closed, its
   * reservation released).
   */
  | { status: 'expired'; order: Order }

class Refused extends Error {
  constructor(readonly reason: OrderRefusal) {
    super(reason)
  }
}

/** A merchant order number: 6–32 of [A-Za-z0-9], unique. */
export function newOutTradeNo(now: Date): string {
  const stamp = now.toISOString().replace(/\D/g, '').slice(0, 14)
  return `QZ${stamp}${randomToken(12)}`
}

/** What a buyer asks for. */
export interface OrderRequest extends SoldOutQuestion {
  groupBuyId?: number
}

/** What {@link reserveOrder} decided: an order (new or the client key's), or a refusal. */
export type Reservation =
  | { status: 'created' | 'existing'; order: Order }
  | { status: OrderRefusal }

/**
 * Creates an order for a member (or returns the one made with the same `clientKey`) and prepays it.
 * The price comes from the catalog and the member's membership, never from the client.
 *
 * On one connection: first the sold-out fast path (one read, no transaction, sold-out.ts), then —
 * unless that read proved `sold_out` — {@link reserveOrder}'s transaction. A flash sale's rush
 * after its last unit costs one statement per request, and no request waits for a second
 * connection.
 */
export async function createOrder(
  db: Kysely<Database>,
  gateway: PayGateway,
  s: ShopSettings,
  r: OrderRequest,
): Promise<CreateOrderResult> {
  const reserved = await db.connection().execute(async (conn): Promise<Reservation> => {
    if (await provenSoldOut(conn, s, r)) return { status: 'sold_out' }
    return reserveOrder(conn, s, r)
  })
  if (!('order' in reserved)) return reserved
  return prepay(db, gateway, s, reserved, r.now)
}

/**
 * Decides an order in one transaction — the slow path, the authority: the buyer's link and member
 * row locked, the client key's order returned, the sale, the per-member limit, a group-buy seat and
 * a unit of stock taken (the group's row before the product's: the house lock order), the order
 * inserted, marked `stock_taken` when it took a unit. Refusals change nothing; `sold_out` is
 * answered before the group's refusals (as sold-out.ts assumes).
 */
export async function reserveOrder(
  db: Kysely<Database>,
  s: ShopSettings,
  r: OrderRequest,
): Promise<Reservation> {
  try {
    return await db.transaction().execute(async (trx) => {
      // The member the mini-program user is linked to now, read under their mp_users row: a 绑定
      // that moves them holds it for update until its orders are moved, so an order is never
      // placed on the member it has just left (the session read the link before the request).
      const memberId = await linkedMemberId(trx, {
        mpAppid: s.mpAppid,
        openid: r.mpOpenid,
        memberId: r.memberId,
      })
      await trx
        .selectFrom('members')
        .select('id')
        .where('id', '=', memberId)
        .forUpdate()
        .executeTakeFirstOrThrow()
      const product = await trx
        .selectFrom('products')
        .selectAll()
        .where('appid', '=', s.appid)
        .where('sku', '=', r.sku)
        .executeTakeFirst()
      if (r.clientKey) {
        const existing = await trx
          .selectFrom('orders')
          .selectAll()
          .where('member_id', '=', memberId)
          .where('client_key', '=', r.clientKey)
          .executeTakeFirst()
        // The key names one order: asked again for another product or group, it is refused.
        if (
          existing &&
          (existing.product_id !== product?.id ||
            (r.groupBuyId !== undefined && existing.group_buy_id !== r.groupBuyId))
        )
          throw new Refused('client_key_reused')
        if (existing) return { status: 'existing' as const, order: existing }
      }
      if (!product) throw new Refused('not_found')
      const sale = onSale(product, r.now)
      if (sale !== 'ok') throw new Refused(sale)
      if (product.per_member_limit !== null) {
        const { n } = await trx
          .selectFrom('orders')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('member_id', '=', memberId)
          .where('product_id', '=', product.id)
          .where('status', 'in', ['pending', 'paid'])
          .executeTakeFirstOrThrow()
        if (Number(n) >= product.per_member_limit) throw new Refused('limit_reached')
      }
      let expiresAt = new Date(r.now.getTime() + s.orderMinutes * 60_000)
      let groupBuyId: number | null = null
      let groupRefusal: OrderRefusal | null = null
      if (product.kind === 'group_buy' && r.groupBuyId !== undefined) {
        const seat = await trx
          .updateTable('group_buys')
          .set((eb) => ({ joined: eb('joined', '+', 1) }))
          .where('id', '=', r.groupBuyId)
          .where('product_id', '=', product.id)
          // formed (succeeded) at the minimum size, a group still takes people while seats
          // and time remain
          .where('status', 'in', ['open', 'succeeded'])
          .where('expires_at', '>', r.now)
          .where('joined', '<', sql<number>`size_max`)
          .returning(['id', 'expires_at'])
          .executeTakeFirst()
        if (seat) {
          groupBuyId = seat.id
          if (seat.expires_at < expiresAt) expiresAt = seat.expires_at
        } else {
          const group = await trx
            .selectFrom('group_buys')
            .select(['status', 'expires_at'])
            .where('id', '=', r.groupBuyId)
            .where('product_id', '=', product.id)
            .executeTakeFirst()
          groupRefusal = !group
            ? 'group_not_found'
            : group.status === 'failed' || group.expires_at <= r.now
              ? 'group_closed'
              : 'group_full'
        }
      }
      let stockTaken = false
      if (product.stock !== null) {
        const taken = await trx
          .updateTable('products')
          .set((eb) => ({ stock: eb('stock', '-', 1) }))
          .where('id', '=', product.id)
          .where('stock', '>=', 1)
          .returning('id')
          .executeTakeFirst()
        if (!taken) throw new Refused('sold_out')
        stockTaken = true
      }
      if (groupRefusal) throw new Refused(groupRefusal)
      if (product.kind === 'group_buy') {
        if (groupBuyId === null) {
          const group = await trx
            .insertInto('group_buys')
            .values({
              appid: s.appid,
              product_id: product.id,
              leader_member_id: memberId,
              status: 'open',
              size_required: product.group_size!,
              size_max: product.group_max!,
              joined: 1,
              expires_at: new Date(r.now.getTime() + product.group_hours! * 3600_000),
              created_at: r.now,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          groupBuyId = group.id
        }
      } else if (r.groupBuyId !== undefined) {
        throw new Refused('group_not_found')
      }
      const membership = await activeMembership(trx, memberId, r.now)
      const order = await trx
        .insertInto('orders')
        .values({
          appid: s.appid,
          out_trade_no: newOutTradeNo(r.now),
          member_id: memberId,
          mp_openid: r.mpOpenid,
          product_id: product.id,
          kind: product.kind,
          description: product.name.slice(0, 127),
          amount_fen: priceFor(product, membership),
          status: 'pending',
          client_key: r.clientKey ?? null,
          group_buy_id: groupBuyId,
          stock_taken: stockTaken,
          expires_at: expiresAt,
          created_at: r.now,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
      return { status: 'created' as const, order }
    })
  } catch (error) {
    if (error instanceof Refused) return { status: error.reason }
    throw error
  }
}

/**
 * Prepays a reserved order (a closed or paid one answers without payment, a pending one past its
 * expiry is answered `expired` without a call); a failure is answered ({@link prepayRefused}
 * decides whether the order closes), never thrown.
 */
async function prepay(
  db: Kysely<Database>,
  gateway: PayGateway,
  s: ShopSettings,
  decided: { status: 'created' | 'existing'; order: Order },
  now: Date,
): Promise<CreateOrderResult> {
  const { order } = decided
  if (order.status !== 'pending') return { ...decided, payment: null }
  // Past its time_expire nothing can be paid under that out_trade_no: no prepay for it.
  if (order.expires_at.getTime() <= now.getTime()) return { status: 'expired', order }
  try {
    // The same parameters every time, so a repeat returns the same prepay_id with a fresh paySign.
    const payment = await gateway.jsapi({
      outTradeNo: order.out_trade_no,
      description: order.description,
      totalFen: order.amount_fen,
      openid: order.mp_openid,
      notifyUrl: s.notifyUrl,
      timeExpire: order.expires_at,
    })
    const prepayId = payment.package.replace(/^prepay_id=/, '')
    if (order.prepay_id !== prepayId) {
      await db
        .updateTable('orders')
        .set({ prepay_id: prepayId })
        .where('id', '=', order.id)
        .execute()
      order.prepay_id = prepayId
    }
    return { ...decided, payment }
  } catch (error) {
    // No answer of WeChat Pay's own: it may have created the order (protocol: retry with the
    // same out_trade_no and identical parameters) — kept pending for the retry, closed at expiry.
    if (!prepayRefused(error)) return { status: 'payment_unavailable', order, error }
    // Refused: nothing can be paid, the reservation of a new order comes back at once (an older
    // one — WeChat Pay may have it, even paid — is left to its expiry, which asks first).
    if (decided.status === 'created' && (await closeOrder(db, order.id, now)))
      order.status = 'closed'
    return { status: 'payment_refused', order, error }
  }
}

/**
 * Whether a prepay's error is WeChat Pay's own refusal (a documented 4xx business error whose
 * answer WeChat Pay signed: the order was not created): not 429 FREQUENCY_LIMITED (retry), nor any
 * 4xx it did not sign — a proxy's or a middlebox's 408, 403 or 413 page, a bare 404 — which says
 * nothing of what WeChat Pay did; anything else — 5xx SYSTEM_ERROR, a timeout, a lost or truncated
 * answer, a bad signature — leaves open whether it created the order.
 */
export const prepayRefused = (error: unknown) =>
  error instanceof PayApiError &&
  error.verified &&
  error.status >= 400 &&
  error.status < 500 &&
  error.status !== 429

/**
 * pending → closed, releasing the group-buy seat and the unit of stock the order took, in one
 * transaction. False when the order was not pending (paid, or closed by someone else first).
 */
export async function closeOrder(db: Db, orderId: number, now: Date): Promise<boolean> {
  const run = async (trx: Trx<Database>) => {
    const closed = await trx
      .updateTable('orders')
      .set({ status: 'closed', closed_at: now })
      .where('id', '=', orderId)
      .where('status', '=', 'pending')
      .returning(['product_id', 'group_buy_id'])
      .executeTakeFirst()
    if (!closed) return false
    // the group's row before the product's (the house lock order)
    if (closed.group_buy_id !== null) {
      await trx
        .updateTable('group_buys')
        .set((eb) => ({ joined: eb('joined', '-', 1) }))
        .where('id', '=', closed.group_buy_id)
        .execute()
    }
    await releaseStock(trx, { orderId })
    return true
  }
  return db.isTransaction ? run(db as Trx<Database>) : db.transaction().execute(run)
}

/**
 * Gives back the units of stock the chosen orders took — one order, or a group buy's orders of the
 * given statuses — once: one statement clears their `stock_taken` and adds that many units to the
 * product, so a retry, or a release racing this one, finds nothing left to give (an order that
 * never took a unit gives none, whatever its product's stock is now). A product whose stock has
 * become unlimited meanwhile stays so. The caller holds the orders' group buy, if any, already
 * (the product's row is locked last). Returns the units given back.
 */
export async function releaseStock(
  trx: Trx<Database>,
  which: { orderId: number } | { groupBuyId: number; statuses: readonly OrderStatus[] },
): Promise<number> {
  const chosen =
    'orderId' in which
      ? sql`id = ${which.orderId}`
      : sql`group_buy_id = ${which.groupBuyId} and status in (${sql.join([...which.statuses])})`
  const { rows } = await sql<{ n: number }>`
    with released as (
      update orders set stock_taken = false
      where stock_taken and ${chosen}
      returning product_id)
    update products p set stock = p.stock + r.n
    from (select product_id, count(*)::int as n from released group by product_id) r
    where p.id = r.product_id and p.stock is not null
    returning r.n`.execute(trx)
  return rows.reduce((sum, row) => sum + Number(row.n), 0)
}

/** What applying a transaction did (also stored in `pay_events.outcome`). */
export type PaymentOutcome =
  | 'paid'
  | 'duplicate'
  | 'flagged'
  | 'refund_requested'
  | 'unknown_order'
  | 'not_success'

/**
 * Applies a WeChat Pay transaction (from a verified notification, or from a query) exactly once:
 * the event id is recorded first (a repeat changes nothing), the order is locked, checked against
 * what WeChat Pay says (merchant, mini program, state, `amount.total`, currency), moved pending →
 * paid by a conditional update, and granted in the same transaction. A mismatch flags the order and
 * grants nothing; a payment for an order that already closed (or whose group buy failed) is
 * refunded.
 */
export async function applyTransaction(
  db: Kysely<Database>,
  gateway: Pick<PayGateway, 'mchid'>,
  s: ShopSettings,
  t: Transaction,
  o: {
    eventId: string
    eventType: string
    now: Date
    timeZone: string
    /** The language of the member's notices (a new badge); default zh-CN. */
    t?: TranslateFn
  },
): Promise<PaymentOutcome> {
  return db.transaction().execute(async (trx) => {
    const fresh = await trx
      .insertInto('pay_events')
      .values({
        id: o.eventId,
        event_type: o.eventType,
        reference: t.out_trade_no ?? null,
        outcome: 'processing',
        received_at: o.now,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst()
    if (!fresh) return 'duplicate'
    const outcome = await decide(trx)
    await trx.updateTable('pay_events').set({ outcome }).where('id', '=', o.eventId).execute()
    return outcome
  })

  async function decide(trx: Trx<Database>): Promise<PaymentOutcome> {
    if (t.trade_state !== 'SUCCESS') return 'not_success'
    const owner = await trx
      .selectFrom('orders')
      .select('member_id')
      .where('out_trade_no', '=', t.out_trade_no)
      .executeTakeFirst()
    if (!owner) return 'unknown_order'
    // The house lock order — member, then order, then product / group buy — so that a payment and
    // the same member's new order never wait on each other in a circle.
    await trx
      .selectFrom('members')
      .select('id')
      .where('id', '=', owner.member_id)
      .forUpdate()
      .execute()
    const order = await trx
      .selectFrom('orders')
      .selectAll()
      .where('out_trade_no', '=', t.out_trade_no)
      .forUpdate()
      .executeTakeFirstOrThrow()
    if (order.status === 'paid' || order.status === 'refunded') return 'duplicate'
    // What WeChat Pay says was paid: refunds are made against it (a flagged order's may differ).
    const reported = {
      paid_total_fen: Number.isInteger(t.amount?.total) ? t.amount!.total! : null,
      payer_total_fen: Number.isInteger(t.amount?.payer_total) ? t.amount!.payer_total! : null,
    }
    if (order.transaction_id && order.transaction_id === t.transaction_id) return 'duplicate'
    const problems = [
      t.mchid !== gateway.mchid && 'mchid',
      t.appid !== s.mpAppid && 'appid',
      t.amount?.total !== order.amount_fen &&
        `amount.total ${t.amount?.total} ≠ ${order.amount_fen}`,
      (t.amount?.currency ?? 'CNY') !== 'CNY' && 'currency',
    ].filter(Boolean)
    if (problems.length > 0) {
      await trx
        .updateTable('orders')
        .set({
          status: 'flagged',
          flag_reason: `payment does not match the order: ${problems.join(', ')}`,
          transaction_id: t.transaction_id ?? null,
          ...reported,
        })
        .where('id', '=', order.id)
        .execute()
      return 'flagged'
    }
    let refundReason: string | null =
      order.status === 'pending' ? null : 'paid after the order closed'
    if (!refundReason && order.group_buy_id !== null) {
      const group = await trx
        .selectFrom('group_buys')
        .select('status')
        .where('id', '=', order.group_buy_id)
        .forUpdate()
        .executeTakeFirstOrThrow()
      if (group.status === 'failed') refundReason = 'paid after the group buy failed'
    }
    if (refundReason) {
      await trx
        .updateTable('orders')
        .set({
          status: 'flagged',
          flag_reason: refundReason,
          transaction_id: t.transaction_id ?? null,
          paid_at: o.now,
          ...reported,
        })
        .where('id', '=', order.id)
        .execute()
      // Refunded, it sells nothing: the unit it took comes back (a closed order gave it back
      // already; the group's row is held above, the product's comes last).
      await releaseStock(trx, { orderId: order.id })
      await trx
        .insertInto('refunds')
        .values({
          order_id: order.id,
          out_refund_no: `R-${order.out_trade_no}`,
          amount_fen: reported.paid_total_fen ?? order.amount_fen,
          reason: refundReason,
          status: 'requested',
          next_attempt_at: o.now,
          created_at: o.now,
          updated_at: o.now,
        })
        .onConflict((oc) => oc.column('out_refund_no').doNothing())
        .execute()
      return 'refund_requested'
    }
    const paid = await trx
      .updateTable('orders')
      .set({
        status: 'paid',
        transaction_id: t.transaction_id ?? null,
        paid_at: o.now,
        ...reported,
      })
      .where('id', '=', order.id)
      .where('status', '=', 'pending')
      .returning('id')
      .executeTakeFirst()
    if (!paid) return 'duplicate'
    await grant(trx, order)
    return 'paid'
  }

  async function grant(trx: Trx<Database>, order: Order) {
    const member = await trx
      .updateTable('members')
      .set((eb) => ({ purchase_count: eb('purchase_count', '+', 1), last_purchased_at: o.now }))
      .where('id', '=', order.member_id)
      .returning(['id'])
      .executeTakeFirstOrThrow()
    let membershipDays = 0
    if (order.kind === 'membership') {
      const plan = await trx
        .selectFrom('products')
        .select(['membership_days', 'tier', 'discount_percent'])
        .where('id', '=', order.product_id)
        .executeTakeFirstOrThrow()
      const days = plan.membership_days ?? 0
      membershipDays = days
      // Extends from the current expiry when still active, else from now.
      await sql`
        insert into memberships (member_id, tier, discount_percent, expires_at, updated_at)
        values (${member.id}, ${plan.tier}, ${plan.discount_percent ?? 100},
          ${o.now}::timestamptz + make_interval(days => ${days}), ${o.now})
        on conflict (member_id) do update set
          tier = excluded.tier, discount_percent = excluded.discount_percent,
          expires_at = greatest(memberships.expires_at, ${o.now}::timestamptz)
            + make_interval(days => ${days}),
          updated_at = excluded.updated_at`.execute(trx)
    }
    // first_purchase and purchase points, frozen until the refund window ends (purchase-grants.ts)
    await grantPurchase(trx, {
      memberId: member.id,
      orderId: order.id,
      outTradeNo: order.out_trade_no,
      paidFen: order.amount_fen,
      membershipDays,
      now: o.now,
      timeZone: o.timeZone,
      freezeDays: s.pointsFreezeDays,
    })
    await awardBadges(trx, member.id, { purchases: null }, { now: o.now, outbox: true, t: o.t })
    if (order.group_buy_id !== null) {
      await trx
        .updateTable('group_buys')
        .set((eb) => ({
          paid: eb('paid', '+', 1),
          status: sql`case when paid + 1 >= size_required then 'succeeded' else status end`,
          settled_at: sql`case when paid + 1 >= size_required and settled_at is null then ${o.now}::timestamptz else settled_at end`,
        }))
        .where('id', '=', order.group_buy_id)
        .execute()
    }
  }
}
