import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { addMembers, alertRows, product } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import type { Database, OrderStatus } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { type PayGateway, unverifiedNotFound } from '../pay/gateway.js'
import type { ShopSettings } from '../shop/catalog.js'
import { runShopMaintenance } from '../shop/maintenance.js'
import { evaluateAlerts } from './alerts.js'

const TZ = 'Asia/Shanghai'
/** Monday 2026-11-16, 10:00 in Beijing. */
const T0 = new Date('2026-11-16T02:00:00Z')
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000)
const DAY = 1440

forEachDatabase('orders_stuck: pending orders maintenance cannot expire', (get, dbName) => {
  const app = (name: string) => `wx_${dbName}_${name}`
  let n = 0
  /** An order of `appid`'s product, in `status`, expiring at `expiresAt`; its out_trade_no. */
  async function order(
    db: Kysely<Database>,
    appid: string,
    status: OrderStatus,
    expiresAt: Date,
  ): Promise<string> {
    const [member] = await addMembers(db, appid, `${appid}_m${++n}`, 1, at(-DAY))
    const productId = await product(db, appid, { sku: `sku-${n}`, fen: 990, at: at(-DAY) })
    const no = `${dbName.toUpperCase()}STUCK${n}`
    await db
      .insertInto('orders')
      .values({
        appid,
        out_trade_no: no,
        member_id: member!,
        mp_openid: 'mp_someone',
        product_id: productId,
        kind: 'flash_sale',
        description: 'item',
        amount_fen: 990,
        status,
        client_key: null,
        group_buy_id: null,
        prepay_id: null,
        transaction_id: null,
        flag_reason: null,
        expires_at: expiresAt,
        created_at: new Date(expiresAt.getTime() - 15 * 60_000),
        paid_at: status === 'paid' ? expiresAt : null,
        closed_at: status === 'closed' ? expiresAt : null,
        paid_total_fen: status === 'paid' ? 990 : null,
        payer_total_fen: status === 'paid' ? 990 : null,
        queried_at: null,
      })
      .execute()
    return no
  }
  /** Shop maintenance at `now` against a WeChat Pay whose order query does `query`. */
  const maintain = (now: Date, query: PayGateway['query']) =>
    runShopMaintenance(
      get().db,
      {
        settings: {} as ShopSettings,
        gateway: { query, close: async () => {} } as unknown as PayGateway,
      },
      { now, timeZone: TZ, logger: silentLogger },
    )
  /** What a gateway answers to a 404 WeChat Pay did not sign (a proxy, a wrong base URL). */
  const unsigned404: PayGateway['query'] = async (no) => {
    throw unverifiedNotFound(
      `GET /v3/pay/transactions/out-trade-no/${no}`,
      404,
      'ORDER_NOT_EXIST',
      '订单不存在',
    )
  }
  const evaluate = (appid: string, now: Date) =>
    evaluateAlerts({
      db: get().db,
      appid,
      now,
      timeZone: TZ,
      locale: 'zh-CN',
      quietHours: null,
      robots: { keys: {}, baseUrl: 'http://127.0.0.1:9' },
    })
  const rows = async (appid: string) =>
    (await alertRows(get().db, appid)).filter((r) => r.rule === 'orders_stuck')

  it('fires for an order still pending an hour past its expiry, names the oldest and the last error, clears when it closes', async () => {
    const { db } = get()
    const appid = app('orders')
    const other = app('orders_other')
    // expired 30 minutes ago (within the grace), paid and closed ones long expired, and another
    // account's pending order expired 3 hours ago
    const recent = await order(db, appid, 'pending', at(-30))
    await order(db, appid, 'paid', at(-180))
    await order(db, appid, 'closed', at(-180))
    await order(db, other, 'pending', at(-180))
    // WeChat Pay's answers do not verify: maintenance cannot expire them, and says why
    expect(await maintain(at(0), unsigned404)).toMatchObject({ closed: 0, errors: 2 })
    const stored = await db
      .selectFrom('orders')
      .select('expire_error')
      .where('out_trade_no', '=', recent)
      .executeTakeFirstOrThrow()
    expect(stored.expire_error).toMatch(/^UNVERIFIED_NOT_FOUND .*404 UNVERIFIED_NOT_FOUND/)
    await evaluate(appid, at(0))
    expect(await rows(appid)).toHaveLength(0)
    // per account: the other one's order is stuck
    await evaluate(other, at(0))
    expect((await rows(other)).map((r) => [r.status, r.value])).toEqual([['open', 1]])

    // an hour and a minute past its expiry (still failing): stuck
    expect(await maintain(at(31), unsigned404)).toMatchObject({ errors: 2 })
    await evaluate(appid, at(31))
    let r = await rows(appid)
    expect(r.map((x) => [x.status, x.value])).toEqual([['open', 1]])
    expect(r[0]!.message).toContain('1 笔未支付订单过期 1 小时后仍未关闭')
    expect(r[0]!.message).toContain(`最早的 ${recent} 已过期 1 小时`)
    expect(r[0]!.message).toContain('最近一次的错误：UNVERIFIED_NOT_FOUND ')

    // an older one that maintenance has not got to yet: counted, and now the oldest
    const older = await order(db, appid, 'pending', at(-150))
    await evaluate(appid, at(32))
    r = await rows(appid)
    expect(r.map((x) => [x.status, x.value])).toEqual([['open', 2]])
    expect(r[0]!.message).toContain(`最早的 ${older} 已过期 3 小时`)

    // WeChat Pay answers again (NOTPAY): maintenance closes them, the alert clears
    const notPaid: PayGateway['query'] = async (no) => ({
      out_trade_no: no,
      trade_state: 'NOTPAY',
    })
    expect(await maintain(at(33), notPaid)).toMatchObject({ closed: 3, errors: 0 })
    await evaluate(appid, at(34))
    expect((await rows(appid)).map((x) => x.status)).toEqual(['closed'])
  })
})
