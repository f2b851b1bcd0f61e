/**
 * Refunds against the sandbox WeChat Pay server, on PGlite and PostgreSQL: the refund queue sends
 * each due refund once however many processes run it at once; a refund status WeChat Pay does
 * not document changes nothing, PROCESSING keeps a refund processing and makes an abnormal one
 * (re-applied by an operator) processing again; a flagged order refunded in full gives its unit of
 * stock back, once, and its group-buy seat if it still held one — a flagged order never completes
 * its group.
 */
import type { Kysely } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT } from '../../test/server.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import type { PayGateway } from '../pay/gateway.js'
import type { ShopRouteOptions } from '../routes/shop.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { failGroupBuy, runShopMaintenance } from './maintenance.js'
import { nodeShop } from './node-shop.js'
import { applyTransaction, closeOrder, reserveOrder } from './orders.js'
import { refundableFen, requestRefund, sendRefund, settleRefund } from './refunds.js'

const TZ = 'Asia/Shanghai'
const MINUTE = 60_000

forEachDatabase('refunds against the sandbox WeChat Pay', (get, dbName) => {
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  let made = 0

  beforeAll(async () => {
    // No notification is delivered here: each test applies what a notification would.
    const sandbox = await startSandboxShop({ notifyUrl: 'http://127.0.0.1:9/pay/notify' })
    pay = sandbox.pay
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: 'http://127.0.0.1:9',
      logger: silentLogger,
    })
  })
  afterAll(() => pay.close())

  const db = () => get().db
  const tag = () => `${dbName}${++made}${Math.random().toString(36).slice(2, 8)}`

  /**
   * A product of `fen` with `stock` units (unlimited when null); a group buy of `group.size`
   * (at most `group.max`) when given.
   */
  const product = async (
    fen: number,
    stock: number | null,
    group?: { size: number; max: number },
  ) => {
    const sku = `rq-${tag()}`
    const { id } = await db()
      .insertInto('products')
      .values({
        appid: SAFE_ACCOUNT.appid,
        sku,
        kind: group ? 'group_buy' : 'flash_sale',
        name: '退款测试',
        price_fen: fen,
        stock,
        per_member_limit: null,
        ...(group ? { group_size: group.size, group_max: group.max, group_hours: 24 } : {}),
        created_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const stockNow = async () =>
      (
        await db()
          .selectFrom('products')
          .select('stock')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).stock
    return { sku, stockNow }
  }

  /** A new member's reservation of `sku` (joining the group buy `groupBuyId`, if given). */
  const reserve = async (sku: string, groupBuyId?: number, on: Kysely<Database> = db()) => {
    const openid = `o_rq_${tag()}`
    const member = await db()
      .insertInto('members')
      .values({ appid: shop.settings.mpAppid, openid, first_seen_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow()
    return reserveOrder(on, shop.settings, {
      memberId: member.id,
      mpOpenid: openid,
      sku,
      now: new Date(),
      groupBuyId,
    })
  }

  /** A member's order of `sku` (stock reserved, a seat of `groupBuyId`), prepaid at WeChat Pay. */
  const order = async (sku: string, groupBuyId?: number) => {
    const r = await reserve(sku, groupBuyId)
    if (!('order' in r)) throw new Error(`not reserved: ${r.status}`)
    await shop.gateway.jsapi({
      outTradeNo: r.order.out_trade_no,
      description: r.order.description,
      totalFen: r.order.amount_fen,
      openid: r.order.mp_openid,
      notifyUrl: shop.settings.notifyUrl,
      timeExpire: r.order.expires_at,
    })
    return r.order.out_trade_no
  }

  /** The payer pays (`fen`: another amount than the order's); applied as its notification is. */
  const payFor = async (outTradeNo: string, fen?: number) => {
    await pay.pay(outTradeNo, { amountTotal: fen, deliver: false })
    const t = await shop.gateway.query(outTradeNo)
    return applyTransaction(db(), shop.gateway, shop.settings, t!, {
      eventId: `test:${outTradeNo}`,
      eventType: 'TRANSACTION.SUCCESS',
      now: new Date(),
      timeZone: TZ,
    })
  }

  const refundRow = (outRefundNo: string) =>
    db()
      .selectFrom('refunds')
      .select(['status', 'next_attempt_at'])
      .where('out_refund_no', '=', outRefundNo)
      .executeTakeFirstOrThrow()
  const orderRow = (outTradeNo: string) =>
    db()
      .selectFrom('orders')
      .selectAll()
      .where('out_trade_no', '=', outTradeNo)
      .executeTakeFirstOrThrow()
  /**
   * `n` paid orders of ¥10 with a refund each recorded, not sent yet (as a failed group buy
   * records them), the i-th due at `dueAt(i)`; their refund numbers `<prefix>-<out_trade_no>`.
   */
  const queuedRefunds = async (n: number, prefix: string, dueAt: (i: number) => Date) => {
    const { sku } = await product(1000, null)
    const numbers: string[] = []
    for (let i = 0; i < n; i++) {
      const no = await order(sku)
      expect(await payFor(no)).toBe('paid')
      const o = await orderRow(no)
      const at = new Date()
      await db()
        .insertInto('refunds')
        .values({
          order_id: o.id,
          out_refund_no: `${prefix}-${no}`,
          amount_fen: 1000,
          reason: '排队退款',
          status: 'requested',
          next_attempt_at: dueAt(i),
          created_at: at,
          updated_at: at,
        })
        .execute()
      numbers.push(`${prefix}-${no}`)
    }
    return numbers
  }
  const maintain = (at: Date, on: Kysely<Database> = db(), gateway: PayGateway = shop.gateway) =>
    runShopMaintenance(
      on,
      { settings: shop.settings, gateway },
      { now: at, timeZone: TZ, logger: silentLogger },
    )

  it('sends each due refund once while two processes run the refund queue and an operator retries', async () => {
    const t0 = new Date()
    const numbers = await queuedRefunds(8, 'RQ', () => t0)
    // each refund request takes a moment, so the senders overlap
    const slow: PayGateway = {
      ...shop.gateway,
      refund: async (r) => {
        await new Promise((resolve) => setTimeout(resolve, 20))
        return shop.gateway.refund(r)
      },
    }
    // PGlite has one connection: its "second process" shares it
    const second = dbName === 'postgres' ? get().open({ max: 4 }) : db()
    const results = await Promise.all([
      maintain(t0, db(), slow),
      maintain(t0, second, slow),
      ...numbers.map((no) => sendRefund(db(), slow, shop.settings, no, t0)),
    ])
    for (const no of numbers) {
      expect({ no, posts: pay.refundRequests(no) }).toEqual({ no, posts: 1 })
      expect((await refundRow(no)).status).toBe('processing')
    }
    expect(results[0]!.errors + results[1]!.errors).toBe(0)
  })

  it("claims each refund just before its send: a slow WeChat Pay does not let the next run's process send the batch's tail again", async () => {
    const t0 = new Date()
    // due in this order
    const numbers = await queuedRefunds(3, 'RL', (i) => new Date(t0.getTime() - i))
    // WeChat Pay answers each refund in a second; the third send is under way once entered
    let entered = 0
    let third!: () => void
    const thirdEntered = new Promise<void>((resolve) => {
      third = resolve
    })
    const slow: PayGateway = {
      ...shop.gateway,
      refund: async (r) => {
        if (++entered === 3) third()
        await new Promise((resolve) => setTimeout(resolve, 1000))
        return shop.gateway.refund(r)
      },
    }
    const first = maintain(t0, db(), slow)
    await thirdEntered
    // Another process's run, 2 min 1 s after the first began: the third refund was claimed ≥ 2 s
    // into the first run, so its lease (2 min from then) has not ended.
    const second = dbName === 'postgres' ? get().open({ max: 2 }) : db()
    await maintain(new Date(t0.getTime() + 2 * MINUTE + 1000), second)
    expect((await first).errors).toBe(0)
    for (const no of numbers)
      expect({ no, posts: pay.refundRequests(no) }).toEqual({ no, posts: 1 })
  })

  it('leaves a refund as it is on a status WeChat Pay does not document; PROCESSING keeps it processing', async () => {
    const { sku } = await product(1000, null)
    const no = await order(sku)
    expect(await payFor(no)).toBe('paid')
    const now = new Date()
    const refund = (outRefundNo: string, amountFen: number) =>
      requestRefund(db(), shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen,
        reason: '状态未知',
        outRefundNo,
        now,
      })
    expect(await refund(`RP-${no}`, 600)).toMatchObject({ refundStatus: 'processing' })
    // a refund WeChat Pay refused so far: recorded, waiting for its next send
    const refusing: PayGateway = {
      ...shop.gateway,
      refund: async () => {
        throw new Error('The operation was aborted due to timeout')
      },
    }
    expect(
      await requestRefund(db(), refusing, shop.settings, {
        outTradeNo: no,
        amountFen: 400,
        reason: '状态未知',
        outRefundNo: `RW-${no}`,
        now,
      }),
    ).toMatchObject({ refundStatus: 'requested' })
    for (const status of ['PROCESSING', 'REFUNDING', 'processing', '', 'toString']) {
      const expected = status === 'PROCESSING' ? 'duplicate' : 'unknown_status'
      expect(await settleRefund(db(), `RP-${no}`, status, now)).toBe(expected)
      expect(await settleRefund(db(), `RW-${no}`, status, now)).toBe(expected)
    }
    expect((await refundRow(`RP-${no}`)).status).toBe('processing')
    expect((await refundRow(`RW-${no}`)).status).toBe('requested')
    // both still hold the order's money: nothing more may be refunded
    expect(await refundableFen(db(), await orderRow(no))).toBe(0)
    // a poll answered with a status WeChat Pay does not document leaves it too
    const odd: PayGateway = {
      ...shop.gateway,
      refundQuery: async (outRefundNo) => ({
        ...(await shop.gateway.refundQuery(outRefundNo))!,
        status: 'REFUNDING',
      }),
    }
    await maintain(new Date(now.getTime() + 11 * MINUTE), db(), odd)
    expect((await refundRow(`RP-${no}`)).status).toBe('processing')
  })

  it('makes an abnormal refund an operator re-applied processing again, and settles it from the poll', async () => {
    const { sku } = await product(3000, null)
    const no = await order(sku)
    expect(await payFor(no)).toBe('paid')
    const t0 = new Date()
    const at = (minutes: number) => new Date(t0.getTime() + minutes * MINUTE)
    const outRefundNo = `RA-${no}`
    expect(
      await requestRefund(db(), shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen: 3000,
        reason: '异常退款',
        outRefundNo,
        now: t0,
      }),
    ).toMatchObject({ refundStatus: 'processing' })
    // the card route fails: REFUND.ABNORMAL
    await pay.completeRefund(outRefundNo, { status: 'ABNORMAL', deliver: false })
    expect(await settleRefund(db(), outRefundNo, 'ABNORMAL', t0)).toBe('settled')
    // the operator re-applies it at WeChat Pay (apply-abnormal-refund): PROCESSING, no notification
    pay.reapplyRefund(outRefundNo)
    const queries = () => pay.calls(`/v3/refund/domestic/refunds/${outRefundNo}`)
    const before = queries()
    expect((await maintain(at(61))).errors).toBe(0) // the hourly poll of an abnormal refund
    expect(queries()).toBe(before + 1)
    const reopened = await refundRow(outRefundNo)
    expect(reopened.status).toBe('processing')
    // polled as a processing refund from now on: 10 minutes later, not an hour
    expect(reopened.next_attempt_at!.getTime()).toBe(at(71).getTime())
    // it completes; its notification is lost: the poll settles it
    await pay.completeRefund(outRefundNo, { deliver: false })
    expect((await maintain(at(71))).errors).toBe(0)
    expect(queries()).toBe(before + 2)
    expect((await refundRow(outRefundNo)).status).toBe('success')
    expect(await orderRow(no)).toMatchObject({ status: 'refunded', refunded_fen: 3000 })
  })

  /** Refunds `amountFen` of `no` and settles it as its REFUND.SUCCESS notification would. */
  const refundInFull = async (no: string, outRefundNo: string, amountFen: number) => {
    const now = new Date()
    expect(
      await requestRefund(db(), shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen,
        reason: '金额不符',
        outRefundNo,
        now,
      }),
    ).toMatchObject({ refundStatus: 'processing' })
    await pay.completeRefund(outRefundNo, { deliver: false })
    return settleRefund(db(), outRefundNo, 'SUCCESS', now)
  }

  it('gives back the unit of stock a flagged order took when it is refunded in full, once', async () => {
    const { sku, stockNow } = await product(1000, 5)
    const no = await order(sku)
    expect(await stockNow()).toBe(4)
    // paid, but not what the order asked: flagged for an operator, nothing granted
    expect(await payFor(no, 800)).toBe('flagged')
    expect(await orderRow(no)).toMatchObject({ status: 'flagged', stock_taken: true })
    expect(await stockNow()).toBe(4) // the operator decides: the unit stays meanwhile
    // a part back: still flagged, still holding its unit
    expect(await refundInFull(no, `RX-${no}`, 300)).toBe('settled')
    expect(await orderRow(no)).toMatchObject({ status: 'flagged', stock_taken: true })
    expect(await stockNow()).toBe(4)
    // the rest of what was paid: refunded in full, it sold nothing — the unit comes back
    expect(await refundInFull(no, `RY-${no}`, 500)).toBe('settled')
    expect(await orderRow(no)).toMatchObject({
      status: 'refunded',
      refunded_fen: 800,
      stock_taken: false,
    })
    expect(await stockNow()).toBe(5)
    // the notification again: once
    expect(await settleRefund(db(), `RY-${no}`, 'SUCCESS', new Date())).toBe('duplicate')
    expect(await stockNow()).toBe(5)
  })

  it('refunds a flagged order that was paid more than it asked in full: what was paid is the cap', async () => {
    const { sku, stockNow } = await product(1000, 5)
    const no = await order(sku)
    expect(await payFor(no, 1200)).toBe('flagged')
    expect(await refundInFull(no, `RZ-${no}`, 1200)).toBe('settled')
    expect(await orderRow(no)).toMatchObject({
      status: 'refunded',
      refunded_fen: 1200,
      stock_taken: false,
    })
    expect(await stockNow()).toBe(5)
    expect(await refundableFen(db(), await orderRow(no))).toBe(0)
  })

  const groupRow = (id: number) =>
    db()
      .selectFrom('group_buys')
      .select(['status', 'joined', 'paid'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
  /** Sends a refund already recorded and settles it as its REFUND.SUCCESS notification would. */
  const sendAndSettle = async (outRefundNo: string) => {
    const now = new Date()
    expect(await sendRefund(db(), shop.gateway, shop.settings, outRefundNo, now)).toBe('processing')
    await pay.completeRefund(outRefundNo, { deliver: false })
    return settleRefund(db(), outRefundNo, 'SUCCESS', now)
  }

  it('gives back the group-buy seat a flagged order held when it is refunded in full, once; it never completes its group', async () => {
    const { sku, stockNow } = await product(1000, 5, { size: 2, max: 2 })
    const lead = await order(sku)
    const group = (await orderRow(lead)).group_buy_id!
    const no = await order(sku, group)
    expect(await groupRow(group)).toEqual({ status: 'open', joined: 2, paid: 0 })
    // paid, but not what the order asked: flagged, and it counts for nothing in the group …
    expect(await payFor(no, 800)).toBe('flagged')
    expect(await payFor(lead)).toBe('paid')
    expect(await groupRow(group)).toEqual({ status: 'open', joined: 2, paid: 1 })
    // … but its seat stays, with its unit, while the operator decides
    expect(await reserve(sku, group)).toEqual({ status: 'group_full' })
    expect(await refundInFull(no, `RX-${no}`, 300)).toBe('settled')
    expect(await groupRow(group)).toMatchObject({ joined: 2 })
    // refunded in full, it bought nothing: the seat comes back with the unit — once
    expect(await refundInFull(no, `RY-${no}`, 500)).toBe('settled')
    expect(await groupRow(group)).toEqual({ status: 'open', joined: 1, paid: 1 })
    expect(await settleRefund(db(), `RY-${no}`, 'SUCCESS', new Date())).toBe('duplicate')
    expect(await groupRow(group)).toEqual({ status: 'open', joined: 1, paid: 1 })
    expect(await stockNow()).toBe(4) // the leader's unit
    // a real buyer takes the seat and completes the group
    const next = await order(sku, group)
    expect(await payFor(next)).toBe('paid')
    expect(await groupRow(group)).toEqual({ status: 'succeeded', joined: 2, paid: 2 })
  })

  it('gives back a seat once: not again for an order that closed before its payment; with the refund of one paid after its group failed', async () => {
    const { sku, stockNow } = await product(1000, 10, { size: 3, max: 3 })
    const lead = await order(sku)
    const group = (await orderRow(lead)).group_buy_id!
    const [mismatched, late] = [await order(sku, group), await order(sku, group)]
    expect(await groupRow(group)).toMatchObject({ joined: 3 })
    // both close unpaid (their seats come back), then are paid: flagged, refunded in full
    expect(await closeOrder(db(), (await orderRow(mismatched)).id, new Date())).toBe(true)
    expect(await closeOrder(db(), (await orderRow(late)).id, new Date())).toBe(true)
    expect(await groupRow(group)).toMatchObject({ joined: 1 })
    expect(await payFor(mismatched, 800)).toBe('flagged')
    expect(await refundInFull(mismatched, `RM-${mismatched}`, 800)).toBe('settled')
    expect(await payFor(late)).toBe('refund_requested')
    expect(await sendAndSettle(`R-${late}`)).toBe('settled')
    expect(await orderRow(late)).toMatchObject({
      status: 'refunded',
      flag_reason: 'paid after the order closed',
    })
    expect(await groupRow(group)).toEqual({ status: 'open', joined: 1, paid: 0 })
    // a buyer joins; the group fails before they pay: their payment is refunded, their seat back
    const afterFailure = await order(sku, group)
    expect(await groupRow(group)).toMatchObject({ joined: 2 })
    await db()
      .updateTable('group_buys')
      .set({ expires_at: new Date(Date.now() - MINUTE) })
      .where('id', '=', group)
      .execute()
    expect(await failGroupBuy(db(), group, new Date())).toBe(true)
    expect(await payFor(afterFailure)).toBe('refund_requested')
    expect(await sendAndSettle(`R-${afterFailure}`)).toBe('settled')
    expect(await settleRefund(db(), `R-${afterFailure}`, 'SUCCESS', new Date())).toBe('duplicate')
    expect(await groupRow(group)).toEqual({ status: 'failed', joined: 1, paid: 0 })
    expect(await stockNow()).toBe(9) // the unpaid leader's, until it closes
  })

  it.runIf(dbName === 'postgres')(
    "gives a flagged order's seat back once while its last refunds settle in several processes and a buyer joins",
    async () => {
      const pools = Array.from({ length: 4 }, () => get().open({ max: 1 }))
      try {
        for (let round = 0; round < 3; round++) {
          const { sku, stockNow } = await product(1000, 5, { size: 2, max: 2 })
          const lead = await order(sku)
          const group = (await orderRow(lead)).group_buy_id!
          const no = await order(sku, group)
          expect(await payFor(no, 800)).toBe('flagged')
          for (const [outRefundNo, fen] of [
            [`RS-${no}`, 300],
            [`RT-${no}`, 500],
          ] as const) {
            await requestRefund(db(), shop.gateway, shop.settings, {
              outTradeNo: no,
              amountFen: fen,
              reason: '金额不符',
              outRefundNo,
              now: new Date(),
            })
            await pay.completeRefund(outRefundNo, { deliver: false })
          }
          const now = new Date()
          // both refunds' notifications (the last one twice) and a buyer, each in its own process
          const [a, b, c, joining] = await Promise.allSettled([
            settleRefund(pools[0]!, `RS-${no}`, 'SUCCESS', now),
            settleRefund(pools[1]!, `RT-${no}`, 'SUCCESS', now),
            settleRefund(pools[2]!, `RT-${no}`, 'SUCCESS', now),
            reserve(sku, group, pools[3]!),
          ])
          expect([a, b, c].map((r) => r.status === 'fulfilled' && r.value).sort()).toEqual([
            'duplicate',
            'settled',
            'settled',
          ])
          expect(joining.status).toBe('fulfilled')
          const joined = joining.status === 'fulfilled' && joining.value.status === 'created'
          // the buyer got the seat now or found the group full before it came back: either way
          // the group counts the leader and that buyer only, and so does the stock
          expect(await orderRow(no)).toMatchObject({ status: 'refunded', refunded_fen: 800 })
          expect(await groupRow(group)).toMatchObject({ joined: joined ? 2 : 1, paid: 0 })
          expect(await stockNow()).toBe(joined ? 3 : 4)
        }
      } finally {
        for (const p of pools) await p.destroy()
      }
    },
  )
})
