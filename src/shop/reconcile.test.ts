/**
 * Daily reconciliation end to end: real purchases and refunds through the mini-program API and the
 * sandbox WeChat Pay server, whose bills (built from its own payments and refunds) the job and the
 * operator API fetch, verify and match — on PGlite and PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { reconcileBillsJob } from '../../jobs/reconcile-bills.js'
import { runJobSlot } from '../../jobs/runner.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { addDays } from '../community/community-time.js'
import { createLogger, type LogFields } from '../logger.js'
import { importVerifyKeys } from '../pay/notification.js'
import { wechatpayGateway } from '../pay/wechatpay-gateway.js'
import type { ShopRouteOptions } from '../routes/shop.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { nodeShop } from './node-shop.js'
import { dayStart, latestBillDate, reconcileDay } from './reconcile.js'
import { requestRefund } from './refunds.js'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

/** `hh:mm` Beijing time on `date`. */
const beijingAt = (date: string, hhmm: string) => new Date(`${date}T${hhmm}:00+08:00`)

it('knows when a bill day is ready: 10:00 Beijing time the next day', () => {
  expect(latestBillDate(new Date('2026-12-02T01:59:00Z'))).toBe('2026-11-30') // 09:59 Beijing
  expect(latestBillDate(new Date('2026-12-02T02:00:00Z'))).toBe('2026-12-01') // 10:00 Beijing
  expect(latestBillDate(new Date('2026-12-01T16:30:00Z'))).toBe('2026-11-30') // 00:30 on the 2nd
  expect(dayStart('2026-12-02').toISOString()).toBe('2026-12-01T16:00:00.000Z')
})

forEachDatabase('daily reconciliation against the sandbox bills', (get) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  let merchant: { privateKeyPem: string; certSerial: string }
  // A fixed day, far from Beijing's midnight: on the real clock a run that crossed it made its
  // payments on the day after `today`. Time still flows from noon (logins, expiries); the server,
  // the sandbox Pay (payments, refunds, notifications) and the writes below all read this clock.
  const today = '2026-11-18'
  const startedAt = Date.now()
  const offset = { ms: 0 }
  const clock = {
    now: () => new Date(beijingAt(today, '12:00').getTime() + (Date.now() - startedAt) + offset.ms),
  }
  /** Runs `work` with the clock moved to `at`, then moves it back. */
  const at = async <T>(when: Date, work: () => Promise<T>): Promise<T> => {
    offset.ms = when.getTime() - clock.now().getTime()
    try {
      return await work()
    } finally {
      offset.ms = 0
    }
  }
  const logs: LogFields[] = []
  const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l)) })
  const flagged = () => logs.filter((l) => l.code === 'RECONCILIATION_MISMATCH')
  let users = 0

  beforeAll(async () => {
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify', clock })
    pay = sandbox.pay
    merchant = sandbox.config.pay
    shop = await nodeShop(sandbox.config, { appid: SAFE_ACCOUNT.appid, apiBase: wx.url, logger })
    server = await startServer(get().db, {
      config: testConfig({ ADMIN_TOKEN: 'reconcile-operator-token' }),
      clock,
      shop,
      logger,
    })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server.close()
    await pay.close()
  })

  const api = async (path: string, init: { token?: string; body?: unknown } = {}) => {
    const res = await fetch(`${server.url}/api/mp${path}`, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }
  const login = async () => {
    const code = wx.loginCode(shop.settings.mpAppid, `o_rec_${++users}`)
    const res = await api('/login', { body: { code } })
    expect(res.status).toBe(200)
    return res.json.token as string
  }
  /** A member buys `sku`; returns the order's number and amount. */
  const buy = async (sku: string) => {
    const token = await login()
    const res = await api('/orders', { token, body: { sku } })
    expect(res.status).toBe(201)
    return { no: res.json.order.outTradeNo as string, fen: res.json.order.amountFen as number }
  }
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(
      `${server.url}/admin/api/accounts/${SAFE_ACCOUNT.appid}/shop/reconciliation${path}`,
      {
        method,
        headers: {
          authorization: 'Bearer reconcile-operator-token',
          'content-type': 'application/json',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      },
    )
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }
  /** The job's run for the slot at `at` (claimed in job_runs like a scheduled one). */
  const runJob = async (at: Date) => {
    const outcome = await runJobSlot(
      reconcileBillsJob,
      { db: get().db, clock: { now: () => at }, logger, config: testConfig(), shop },
      { slot: at, trigger: 'schedule', worker: 'test' },
    )
    if (outcome.status !== 'ran') throw new Error(`job ${outcome.status}`)
    return outcome.result
  }
  const runs = (date: string) =>
    get()
      .db.selectFrom('reconciliation_runs')
      .select(['kind', 'status', 'line_count', 'mismatch_count', 'error'])
      .where('bill_date', '=', date)
      .orderBy('kind', 'desc')
      .execute()
  /** Mismatches of a day as `kind key their our`, sorted. */
  const mismatchesOf = async (date: string) =>
    (
      await get()
        .db.selectFrom('reconciliation_mismatches as m')
        .innerJoin('reconciliation_runs as r', 'r.id', 'm.run_id')
        .select(['m.kind', 'm.key', 'm.their_fen', 'm.our_fen', 'm.status'])
        .where('r.bill_date', '=', date)
        .execute()
    )
      .map((m) => `${m.kind} ${m.key} ${m.their_fen} ${m.our_fen} ${m.status}`)
      .sort()

  it('reconciles a day without activity (NO_STATEMENT_EXIST) as empty, without error', async () => {
    // tomorrow 09:30 Beijing: today's bill is not made yet, yesterday's is the newest
    const result = await runJob(beijingAt(addDays(today, 1), '09:30'))
    expect(result).toMatchObject({
      days: [addDays(today, -1)],
      reconciled: 2,
      pending: 0,
      failed: 0,
    })
    expect(await runs(addDays(today, -1))).toEqual([
      { kind: 'trade', status: 'reconciled', line_count: 0, mismatch_count: 0, error: null },
      { kind: 'fundflow', status: 'reconciled', line_count: 0, mismatch_count: 0, error: null },
    ])
    expect(pay.calls('/v3/billdownload/file')).toBe(0)
  })

  it('records exactly the mismatches between the bills and the shop, idempotently', async () => {
    // matching: a paid membership with a partial refund, a paid flash sale
    const vip = await buy('vip-30')
    await pay.pay(vip.no)
    const refund = await requestRefund(get().db, shop.gateway, shop.settings, {
      outTradeNo: vip.no,
      amountFen: 1000,
      reason: '部分退款',
      outRefundNo: `RF-${vip.no}`,
      now: clock.now(),
    })
    expect(refund).toMatchObject({ status: 'requested', refundStatus: 'processing' })
    await pay.completeRefund(`RF-${vip.no}`)
    const tea = await buy('flash-tea')
    await pay.pay(tea.no)
    // amount_differs: WeChat Pay took a fen less than the order (flagged here, nothing granted)
    const odd = await buy('vip-90')
    await pay.pay(odd.no, { amountTotal: odd.fen - 1 })
    // missing_here: paid at WeChat Pay for an order this shop never made
    pay.foreignPayment({ outTradeNo: 'FOREIGN00000001', totalFen: 1990 })
    // refund_missing_here: refunded at WeChat Pay (merchant platform) outside the shop
    pay.foreignRefund({ outTradeNo: tea.no, outRefundNo: 'OUTSIDE-1', refundFen: 100 })
    // missing_there: an order marked paid here that WeChat Pay never saw
    const ghost = await buy('vip-30')
    await get()
      .db.updateTable('orders')
      .set({ status: 'paid', transaction_id: '4200000000000000000000', paid_at: clock.now() })
      .where('out_trade_no', '=', ghost.no)
      .execute()
    // refund_missing_there: a refund of it WeChat Pay is said to have accepted
    await get()
      .db.insertInto('refunds')
      .values((eb) => ({
        order_id: eb.selectFrom('orders').select('id').where('out_trade_no', '=', ghost.no),
        out_refund_no: `RG-${ghost.no}`,
        amount_fen: 300,
        reason: '幽灵退款',
        status: 'success',
        refund_id: '50300000000000000000',
        created_at: clock.now(),
        updated_at: clock.now(),
      }))
      .execute()
    // a pending order WeChat Pay was never paid for is no mismatch
    await buy('vip-365')

    logs.length = 0
    const result = await runJob(beijingAt(addDays(today, 1), '10:30'))
    expect(result).toMatchObject({ days: [today], reconciled: 2, failed: 0, newMismatches: 5 })
    const expected = [
      `amount_differs ${odd.no} ${odd.fen - 1} ${odd.fen} open`,
      `missing_here FOREIGN00000001 1990 null open`,
      `missing_there ${ghost.no} null ${ghost.fen} open`,
      `refund_missing_here OUTSIDE-1 100 null open`,
      `refund_missing_there RG-${ghost.no} null 300 open`,
    ]
    expect(await mismatchesOf(today)).toEqual(expected)
    // trade: 4 payments + 2 refunds; fund flow: 4 payments and their 4 fees, 2 refunds
    expect(await runs(today)).toEqual([
      { kind: 'trade', status: 'reconciled', line_count: 6, mismatch_count: 5, error: null },
      { kind: 'fundflow', status: 'reconciled', line_count: 10, mismatch_count: 0, error: null },
    ])
    expect(
      flagged()
        .map((l) => [l.kind, l.key])
        .sort(),
    ).toEqual([
      ['amount_differs', odd.no],
      ['missing_here', 'FOREIGN00000001'],
      ['missing_there', ghost.no],
      ['refund_missing_here', 'OUTSIDE-1'],
      ['refund_missing_there', `RG-${ghost.no}`],
    ])

    // the operator's report: runs with the summary checked and both sides' totals, mismatches
    const report = await admin('GET', `?date=${today}`)
    expect(report.status).toBe(200)
    const trade = report.json.runs[0]
    expect(trade).toMatchObject({ kind: 'trade', status: 'reconciled', lines: 6, open: 5 })
    expect(trade.totals.summary.every((c: { ok: boolean }) => c.ok)).toBe(true)
    expect(trade.totals.bill.payments).toEqual({
      count: 4,
      fen: vip.fen + tea.fen + odd.fen - 1 + 1990,
    })
    expect(trade.totals.ours.payments).toEqual({ count: 3, fen: vip.fen + tea.fen + ghost.fen })
    expect(trade.totals.bill.refunds).toEqual({ count: 2, fen: 1100 })
    expect(trade.totals.ours.refunds).toEqual({ count: 2, fen: 1300 })
    expect(report.json.runs[1].totals.summary.every((c: { ok: boolean }) => c.ok)).toBe(true)
    const foreign = report.json.mismatches.find(
      (m: { outTradeNo: string }) => m.outTradeNo === 'FOREIGN00000001',
    )
    expect(foreign).toMatchObject({
      kind: 'missing_here',
      theirFen: 1990,
      ourFen: null,
      status: 'open',
      detail: 'paid at WeChat Pay, no such order here',
    })
    expect(foreign.transactionId).toMatch(/^4200/)

    // an operator resolves one with a note …
    const resolved = await admin('PATCH', `/mismatches/${foreign.id}`, {
      status: 'resolved',
      note: '线下收款，已核实',
    })
    expect(resolved).toMatchObject({ status: 200, json: { status: 'resolved' } })
    // … and re-runs the day (its bill is ready now): the same mismatches, the note kept,
    // nothing reported again
    logs.length = 0
    const again = await at(beijingAt(addDays(today, 1), '10:30'), async () => {
      const answer = await admin('POST', '', { date: today })
      expect((await admin('POST', '', { date: addDays(today, 1) })).json.code).toBe(
        'BILL_NOT_READY',
      )
      return answer
    })
    expect(again.status).toBe(200)
    expect(again.json.outcomes.map((x: { status: string }) => x.status)).toEqual([
      'reconciled',
      'reconciled',
    ])
    expect(await mismatchesOf(today)).toEqual(
      expected.map((e) => (e.includes('FOREIGN') ? e.replace(' open', ' resolved') : e)),
    )
    expect(again.json.mismatches.find((m: { id: number }) => m.id === foreign.id)).toMatchObject({
      note: '线下收款，已核实',
    })
    expect(flagged()).toEqual([])
    expect((await admin('GET', '/mismatches')).json.mismatches).toHaveLength(4)
    expect((await admin('GET', '/mismatches?status=all')).json.mismatches).toHaveLength(5)
    // a fixed cause disappears on the next run: the ghost order was not paid after all
    await get().db.deleteFrom('refunds').where('out_refund_no', '=', `RG-${ghost.no}`).execute()
    await get()
      .db.updateTable('orders')
      .set({ status: 'closed', transaction_id: null, paid_at: null })
      .where('out_trade_no', '=', ghost.no)
      .execute()
    await reconcileDay(get().db, shop.gateway, shop.settings, {
      date: today,
      now: clock.now(),
      logger,
    })
    expect(await mismatchesOf(today)).toHaveLength(3)
  })

  it('resolves a refund missing from its day once the next day’s bill lists it', async () => {
    const yesterday = addDays(today, -1)
    const order = await buy('vip-30')
    await pay.pay(order.no)
    const outRefundNo = `RM-${order.no}`
    await requestRefund(get().db, shop.gateway, shop.settings, {
      outTradeNo: order.no,
      amountFen: 200,
      reason: '跨日退款',
      outRefundNo,
      now: clock.now(),
    })
    // recorded here just before midnight, accepted by WeChat Pay (and billed) the next day
    await get()
      .db.updateTable('refunds')
      .set({ created_at: beijingAt(yesterday, '23:59') })
      .where('out_refund_no', '=', outRefundNo)
      .execute()
    const reconcile = (date: string) =>
      reconcileDay(get().db, shop.gateway, shop.settings, {
        date,
        now: clock.now(),
        logger,
        kinds: ['trade'],
      })
    await reconcile(yesterday)
    expect(await mismatchesOf(yesterday)).toEqual([
      `refund_missing_there ${outRefundNo} null 200 open`,
    ])
    await reconcile(today)
    expect(await mismatchesOf(yesterday)).toEqual([
      `refund_missing_there ${outRefundNo} null 200 resolved`,
    ])
    const note = await get()
      .db.selectFrom('reconciliation_mismatches')
      .select('note')
      .where('key', '=', outRefundNo)
      .executeTakeFirstOrThrow()
    expect(note.note).toBe(`listed in the bill of ${today}`)
    // re-running the earlier day now finds it listed: no mismatch at all
    await reconcile(yesterday)
    expect(await mismatchesOf(yesterday)).toEqual([])
  })

  it('tries a bill still being made (STATEMENT_CREATING) again at the next run', async () => {
    const tomorrow = addDays(today, 1)
    pay.setBillFault('creating')
    try {
      const result = await runJob(beijingAt(addDays(today, 2), '10:00'))
      expect(result).toMatchObject({ days: [tomorrow], reconciled: 0, pending: 2, failed: 0 })
      expect((await runs(tomorrow)).map((r) => r.status)).toEqual(['pending', 'pending'])
    } finally {
      pay.setBillFault(null)
    }
    const later = await runJob(beijingAt(addDays(today, 2), '10:30'))
    expect(later).toMatchObject({ days: [tomorrow], reconciled: 2, pending: 0 })
    // and once reconciled, a day is not fetched again by the job
    const calls = pay.calls('/v3/bill/tradebill')
    expect(await runJob(beijingAt(addDays(today, 2), '11:00'))).toMatchObject({ days: [] })
    expect(pay.calls('/v3/bill/tradebill')).toBe(calls)
  })

  it('downloads plain and GZIP bills alike, decompressing the GZIP one before its hash', async () => {
    const raw: { gzip: boolean; first: number }[] = []
    const gateway = wechatpayGateway({
      appid: shop.settings.mpAppid,
      mchid: shop.gateway.mchid,
      privateKeyPem: merchant.privateKeyPem,
      certSerial: merchant.certSerial,
      apiV3Key: shop.apiV3Key,
      baseUrl: pay.url,
      verifyKeys: await importVerifyKeys(pay.verifyKeys()),
      fetch: async (input, init) => {
        const res = await fetch(input, init)
        const url = String(input)
        if (!url.includes('/v3/billdownload/file')) return res
        const bytes = new Uint8Array(await res.clone().arrayBuffer())
        raw.push({ gzip: url.includes('tartype=gzip'), first: bytes[0]! })
        return res
      },
    })
    const plain = await gateway.billUrl('trade', today)
    const zipped = await gateway.billUrl('trade', today, { gzip: true })
    if (plain.status !== 'ready' || zipped.status !== 'ready') throw new Error('no bill')
    expect(zipped.downloadUrl).toMatch(/&tartype=gzip$/)
    const a = await gateway.downloadBill(plain)
    const b = await gateway.downloadBill(zipped)
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true)
    expect(new TextDecoder().decode(b)).toContain('FOREIGN00000001')
    // the GZIP stream really was GZIP on the wire (0x1f), the plain one the bill's BOM (0xef)
    expect(raw).toEqual([
      { gzip: false, first: 0xef },
      { gzip: true, first: 0x1f },
    ])
    // and the trade bill reconciles the same either way
    const before = await mismatchesOf(today)
    await reconcileDay(get().db, gateway, shop.settings, {
      date: today,
      now: clock.now(),
      logger,
      gzip: false,
      kinds: ['trade'],
    })
    expect(await mismatchesOf(today)).toEqual(before)
  })

  it('refuses a bill whose hash does not match: nothing recorded, the day kept as it was', async () => {
    const past = addDays(today, -20)
    pay.foreignPayment({
      outTradeNo: 'FOREIGN00000002',
      totalFen: 500,
      at: beijingAt(past, '12:00'),
    })
    const reportBefore = await admin('GET', `?date=${today}`)
    pay.setBillFault('hash')
    logs.length = 0
    try {
      const refused = await admin('POST', '', { date: past, kinds: ['trade'] })
      expect(refused.status).toBe(200)
      expect(refused.json.outcomes).toEqual([
        {
          kind: 'trade',
          status: 'failed',
          error: expect.stringMatching(/BillIntegrityError.*SHA-1/),
        },
      ])
      expect(await runs(past)).toEqual([
        {
          kind: 'trade',
          status: 'failed',
          line_count: 0,
          mismatch_count: 0,
          error: expect.stringContaining('SHA-1'),
        },
      ])
      expect(await mismatchesOf(past)).toEqual([])
      const lines = await get()
        .db.selectFrom('reconciliation_lines as l')
        .innerJoin('reconciliation_runs as r', 'r.id', 'l.run_id')
        .select('l.line_no')
        .where('r.bill_date', '=', past)
        .execute()
      expect(lines).toEqual([])
      // a reconciled day whose new download fails keeps its results
      await at(beijingAt(addDays(today, 1), '10:30'), () => admin('POST', '', { date: today }))
      const reportAfter = await admin('GET', `?date=${today}`)
      expect(reportAfter.json.mismatches).toEqual(reportBefore.json.mismatches)
      expect(reportAfter.json.runs.map((r: { status: string }) => r.status)).toEqual([
        'reconciled',
        'reconciled',
      ])
      expect(logs.filter((l) => l.code === 'RECONCILIATION_FAILED')).toHaveLength(3)
    } finally {
      pay.setBillFault(null)
    }
    // the next try gets a good bill
    const ok = await admin('POST', '', { date: past, kinds: ['trade'] })
    expect(ok.json.outcomes).toMatchObject([{ kind: 'trade', status: 'reconciled', lines: 1 }])
    expect(await mismatchesOf(past)).toEqual(['missing_here FOREIGN00000002 500 null open'])
  })

  it('counts a refund its REFUND.SUCCESS settled before the request’s answer came, and records its refund_id', async () => {
    const day = addDays(today, 10)
    const outRefundNo = await at(beijingAt(day, '12:00'), async () => {
      const order = await buy('vip-30')
      await pay.pay(order.no)
      const outRefundNo = `RL-${order.no}`
      // WeChat Pay accepts the refund, its answer is lost; the notification comes first
      const lost = {
        ...shop.gateway,
        refund: async (r: Parameters<typeof shop.gateway.refund>[0]) => {
          await shop.gateway.refund(r)
          throw new Error('fetch failed: the answer was lost')
        },
      }
      const sent = await requestRefund(get().db, lost, shop.settings, {
        outTradeNo: order.no,
        amountFen: 700,
        reason: '答复丢失',
        outRefundNo,
        now: clock.now(),
      })
      expect(sent).toMatchObject({ refundStatus: 'requested' })
      expect((await pay.completeRefund(outRefundNo)).answer?.status).toBe(204)
      return outRefundNo
    })
    const row = await get()
      .db.selectFrom('refunds')
      .select(['status', 'refund_id'])
      .where('out_refund_no', '=', outRefundNo)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({
      status: 'success',
      refund_id: pay.order(outRefundNo.slice(3))?.refunds.get(outRefundNo)?.refund_id,
    })
    expect(row.refund_id).toMatch(/^5030/)
    const reconciled = async () => {
      await reconcileDay(get().db, shop.gateway, shop.settings, {
        date: day,
        now: beijingAt(addDays(day, 1), '10:30'),
        logger,
        kinds: ['trade'],
      })
      const run = await get()
        .db.selectFrom('reconciliation_runs')
        .select(['mismatch_count', 'totals'])
        .where('bill_date', '=', day)
        .where('kind', '=', 'trade')
        .executeTakeFirstOrThrow()
      const totals = (typeof run.totals === 'string' ? JSON.parse(run.totals) : run.totals) as {
        bill: { refunds: unknown }
        ours: { refunds: unknown }
      }
      return {
        bill: totals.bill.refunds,
        ours: totals.ours.refunds,
        mismatches: run.mismatch_count,
      }
    }
    const counted = { bill: { count: 1, fen: 700 }, ours: { count: 1, fen: 700 }, mismatches: 0 }
    expect(await reconciled()).toEqual(counted)
    // a settled refund is counted by its status, not by whether its refund_id is known (one
    // settled before refund_id was recorded from notifications has none)
    await get()
      .db.updateTable('refunds')
      .set({ refund_id: null })
      .where('out_refund_no', '=', outRefundNo)
      .execute()
    expect(await reconciled()).toEqual(counted)
  })
})
