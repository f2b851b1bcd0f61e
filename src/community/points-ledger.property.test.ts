/**
 * The ledger's invariant as a property (issue #19): whatever mix of grants, awards, spends,
 * make-up check-ins, reversals, frozen purchase points (grant, release, refunds) and expiry runs a
 * member goes through, on an injected clock, Σ ledger = balance ≥ 0 (available and frozen), the
 * lots add up to the balance and every entry's balance_after is its running sum.
 *
 * A make-up check-in is modelled as what it is to the ledger: a spend with its own rule
 * (`makeup_checkin`) through the public ledger function; the real make-up service is wired here
 * once it is merged.
 */
import fc from 'fast-check'
import { expect, it } from 'vitest'
import { product } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { translator } from '../bot/i18n.js'
import { grantPurchase, releaseFrozenPoints, takeBackPurchase } from '../shop/purchase-grants.js'
import { type PointsExpirySettings, runPointsExpiry } from './points-expiry.js'
import { applyDelta, awardRule, type LedgerChange, withMemberLocked } from './points-ledger.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxproperty0000000001'
const DAY = 86_400_000
const t = translator('zh-CN')
const campaigns = { timeZone: TZ, quietHours: null }

const op = fc.oneof(
  fc.record({ k: fc.constant('grant' as const), n: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ k: fc.constant('award' as const) }),
  fc.record({ k: fc.constant('spend' as const), n: fc.integer({ min: 1, max: 250 }) }),
  fc.record({ k: fc.constant('makeup' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ k: fc.constant('reverse' as const) }),
  fc.record({ k: fc.constant('purchase' as const), fen: fc.integer({ min: 100, max: 30_000 }) }),
  fc.record({ k: fc.constant('release' as const) }),
  fc.record({
    k: fc.constant('refund' as const),
    pick: fc.nat(),
    share: fc.double({ min: 0.1, max: 1, noNaN: true }),
  }),
  fc.record({ k: fc.constant('advance' as const), days: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ k: fc.constant('expire' as const) }),
)
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never

const policy: fc.Arbitrary<PointsExpirySettings> = fc.record({
  policy: fc.oneof(
    fc.constant({ mode: 'off' as const }),
    fc.constant({ mode: 'year_end' as const }),
    fc.record({ mode: fc.constant('days' as const), days: fc.integer({ min: 1, max: 90 }) }),
  ),
  noticeDays: fc.integer({ min: 0, max: 10 }),
})

forEachDatabase('the ledger invariant with expiry, frozen points and make-ups', (get) => {
  let seq = 0
  it('Σ ledger = balance ≥ 0 = Σ lots for any sequence', async () => {
    const db = get().db
    const productId = await product(db, APPID, {
      sku: 'prop-1',
      fen: 100,
      at: new Date('2026-01-01T00:00:00Z'),
    })

    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 30 }),
        policy,
        fc.integer({ min: 0, max: 5 }),
        async (ops: Op[], settings, freezeDays) => {
          let now = new Date('2026-01-10T02:00:00Z')
          const { id } = await db
            .insertInto('members')
            .values({
              appid: APPID,
              openid: `o_prop_${++seq}`,
              subscribed: true,
              first_seen_at: now,
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          const change = (rule: string, extra: Partial<LedgerChange> = {}): LedgerChange => ({
            appid: APPID,
            memberId: id,
            rule,
            idempotencyKey: `${rule}:${id}:${++seq}`,
            now,
            timeZone: TZ,
            ...extra,
          })
          const spends: number[] = []
          const orders: { id: number; fen: number; refunded: number }[] = []
          for (const o of ops) {
            if (o.k === 'grant')
              await withMemberLocked(db, id, (trx, m) => applyDelta(trx, m, change('grant'), o.n))
            else if (o.k === 'award')
              await withMemberLocked(db, id, (trx, m) => awardRule(trx, m, change('checkin')))
            else if (o.k === 'spend' || o.k === 'makeup') {
              const rule = o.k === 'spend' ? 'redeem' : 'makeup_checkin'
              const r = await withMemberLocked(db, id, (trx, m) =>
                applyDelta(trx, m, change(rule), -o.n),
              )
              if (r.status === 'applied') spends.push(o.n)
            } else if (o.k === 'reverse') {
              const n = spends.pop()
              if (n)
                await withMemberLocked(db, id, (trx, m) =>
                  applyDelta(trx, m, change('redeem_refund', { earned: false }), n),
                )
            } else if (o.k === 'purchase') {
              const order = await db
                .insertInto('orders')
                .values({
                  appid: APPID,
                  out_trade_no: `prop${++seq}`,
                  member_id: id,
                  mp_openid: `mp_${id}`,
                  product_id: productId,
                  kind: 'flash_sale',
                  description: 'property',
                  amount_fen: o.fen,
                  status: 'paid',
                  expires_at: now,
                  created_at: now,
                  paid_at: now,
                })
                .returning('id')
                .executeTakeFirstOrThrow()
              await withMemberLocked(db, id, (trx) =>
                grantPurchase(trx, {
                  memberId: id,
                  orderId: order.id,
                  outTradeNo: `prop${seq}`,
                  paidFen: o.fen,
                  membershipDays: 0,
                  now,
                  timeZone: TZ,
                  freezeDays,
                }),
              )
              orders.push({ id: order.id, fen: o.fen, refunded: 0 })
            } else if (o.k === 'release') await releaseFrozenPoints(db, { now })
            else if (o.k === 'refund') {
              const order = orders[o.pick % Math.max(orders.length, 1)]
              if (!order || order.refunded >= order.fen) continue
              order.refunded = Math.min(
                order.fen,
                order.refunded + Math.max(1, Math.round(order.fen * o.share)),
              )
              await db.transaction().execute((trx) =>
                takeBackPurchase(trx, {
                  orderId: order.id,
                  refundId: ++seq,
                  outRefundNo: `r${seq}`,
                  refundedFen: order.refunded,
                  paidFen: order.fen,
                  now,
                }),
              )
            } else if (o.k === 'advance') now = new Date(now.getTime() + o.days * DAY)
            else await runPointsExpiry(db, { now, settings, campaigns, t })
          }
          // at the end every due lot has expired: what is left never expires before now
          await runPointsExpiry(db, { now, settings, campaigns, t })
          await expectLedgerInvariant(db)
          const due = await db
            .selectFrom('points_lots')
            .select('ledger_id')
            .where('member_id', '=', id)
            .where('remaining', '>', 0)
            .where('expires_at', '<=', now)
            .execute()
          expect(due).toEqual([])
        },
      ),
      { numRuns: 25 },
    )
  }, 120_000)
})
