import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { translator } from '../bot/i18n.js'
import { systemClock } from '../clock.js'
import { applyDelta, withMemberLocked } from '../community/points-ledger.js'
import { databaseTokenStore } from '../community/token-store.js'
import { silentLogger } from '../logger.js'
import { PayApiError } from '../pay/gateway.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { createPusher } from '../sandbox/pusher.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { runShopMaintenance } from '../shop/maintenance.js'
import { nodeShop } from '../shop/node-shop.js'
import { DEFAULT_TRANSFER_SETTINGS } from '../shop/transfer-bills.js'
import { sendTransfer, TRANSFER_MAX_ATTEMPTS, transferRetryDelayMs } from '../shop/transfers.js'
import { accountClient } from '../wechat/api/account-client.js'
import type { ShopRouteOptions } from './shop.js'

const ADMIN_TOKEN = 'transfer-operator-token-01'
const TZ = 'Asia/Shanghai'
const HOUR = 3600_000

const OA_SECRET = 'e2e-transfer-oa-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase(
  'cashback paid through WeChat Pay merchant transfers, end to end',
  (get, dbName) => {
    let server: TestServer
    let pay: SandboxPay
    let shop: ShopRouteOptions['shop']
    const offset = { ms: 0 }
    const clock = { now: () => new Date(Date.now() + offset.ms) }
    let people = 0

    beforeAll(async () => {
      const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
      pay = sandbox.pay
      shop = await nodeShop(sandbox.config, {
        appid: SAFE_ACCOUNT.appid,
        apiBase: wx.url,
        logger: silentLogger,
      })
      // The account's API client: a redemption asks user/info for a follower's unionid.
      const oaApi = accountClient({
        tokenStore: databaseTokenStore(get().db, systemClock),
        appid: SAFE_ACCOUNT.appid,
        secret: OA_SECRET,
        baseUrl: wx.url,
        mode: 'stable',
        clock: systemClock,
        logger: silentLogger,
      })
      server = await startServer(get().db, {
        config: testConfig({ ADMIN_TOKEN }),
        clock,
        shop,
        api: (appid) => (appid === SAFE_ACCOUNT.appid ? oaApi : undefined),
      })
      shop.settings.notifyUrl = `${server.url}/pay/notify`
    })
    afterAll(async () => {
      await server.close()
      await pay.close()
    })

    const oa = () => createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const notifyUrl = () => `${server.url}/pay/notify`

    const api = async (path: string, token: string) => {
      const res = await fetch(`${server.url}/api/mp${path}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
      return { status: res.status, json: (await res.json()) as Record<string, any> }
    }
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}/admin/api/accounts/${SAFE_ACCOUNT.appid}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
      return { status: res.status, json: (await res.json()) as Record<string, any> }
    }

    /** A mini-program sign-in (wx.login → our /login); the same unionid merges with the follower. */
    const login = async (unionid?: string) => {
      const openid = `o_mp_cb_${++people}_${Math.random().toString(36).slice(2, 8)}`
      const code = wx.loginCode(shop.settings.mpAppid, openid, unionid)
      const res = await fetch(`${server.url}/api/mp/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      })
      expect(res.status).toBe(200)
      const json = (await res.json()) as { token: string; member: { id: number } }
      return { openid, token: json.token, memberId: json.member.id }
    }

    /**
     * An OA follower with `points`, signed in to the mini program once (unless `mp: false`); with
     * `knownUnionid: false` only WeChat knows their unionid (user/info), so that sign-in is
     * another member.
     */
    const follower = async (points: number, o: { mp?: boolean; knownUnionid?: boolean } = {}) => {
      const n = ++people
      const openid = `o_oa_cb_${dbName}_${n}`
      const unionid = `union-cb-${dbName}-${n}`
      wx.setUser(openid, { subscribe: true, unionid })
      const { id } = await get()
        .db.insertInto('members')
        .values({
          appid: SAFE_ACCOUNT.appid,
          openid,
          unionid: o.knownUnionid === false ? null : unionid,
          first_seen_at: new Date(),
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      await withMemberLocked(get().db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          {
            appid: SAFE_ACCOUNT.appid,
            memberId: id,
            rule: 'grant',
            idempotencyKey: `cb-seed:${id}`,
            now: new Date(),
            timeZone: TZ,
          },
          points,
        ),
      )
      const mp = o.mp === false ? undefined : await login(unionid)
      if (mp && o.knownUnionid !== false) expect(mp.memberId).toBe(id)
      return { id, openid, unionid, mp }
    }

    /** 兑换 <code> in the OA chat; the reply's text. */
    const redeem = async (openid: string, code = 4) =>
      String((await oa().text(openid, `兑换 ${code}`)).reply?.Content ?? '')

    const transferOf = (memberId: number) =>
      get()
        .db.selectFrom('transfers')
        .selectAll()
        .where('member_id', '=', memberId)
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow()
    const pointsLedger = (memberId: number) =>
      get()
        .db.selectFrom('points_ledger')
        .select(['rule', 'delta'])
        .where('member_id', '=', memberId)
        .where('rule', 'in', ['redeem', 'redeem_refund'])
        .orderBy('id')
        .execute()
    const balance = async (memberId: number) =>
      (
        await get()
          .db.selectFrom('members')
          .select('points_balance')
          .where('id', '=', memberId)
          .executeTakeFirstOrThrow()
      ).points_balance
    const redemption = (id: number) =>
      get()
        .db.selectFrom('redemptions')
        .select(['status'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    const cashbackStock = async () =>
      (
        await get()
          .db.selectFrom('rewards')
          .select('stock')
          .where('appid', '=', SAFE_ACCOUNT.appid)
          .where('code', '=', 4)
          .executeTakeFirstOrThrow()
      ).stock
    const maintain = (db = get().db) =>
      runShopMaintenance(db, shop, {
        now: clock.now(),
        timeZone: TZ,
        logger: silentLogger,
        t: translator('zh-CN'),
      })

    it('redeems 50元返现 in the OA chat, the member confirms in the mini program, the cash is paid', async () => {
      // Never signed in to the mini program: nothing is spent, the reply links to it.
      const stranger = await follower(6000, { mp: false })
      const refused = await redeem(stranger.openid)
      expect(refused).toContain('需要先在小程序里登录一次')
      expect(refused).toContain(`data-miniprogram-appid="${shop.settings.mpAppid}"`)
      expect(await pointsLedger(stranger.id)).toEqual([])

      const u = await follower(6000)
      const stockBefore = await cashbackStock()
      const reply = await redeem(u.openid)
      const row = await transferOf(u.id)
      expect(reply).toContain('兑换成功 💰 50元返现')
      expect(reply).toContain('50.00 元')
      expect(reply).toContain(`data-miniprogram-path="pages/cashback/index?no=${row.out_bill_no}"`)
      expect(row).toMatchObject({
        state: 'pending',
        amount_fen: 5000,
        openid: u.mp!.openid,
        pay_appid: shop.settings.mpAppid,
        request_body: null,
      })
      expect(row.out_bill_no).toMatch(/^[A-Za-z0-9]{1,32}$/)
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
      expect(await cashbackStock()).toBe(stockBefore! - 1)

      // The member opens the page: the bill is created now, and the page gets its package.
      const list = await api('/cashbacks', u.mp!.token)
      expect(list.status).toBe(200)
      const no = row.out_bill_no
      const bill = pay.transfer(no)!
      expect(bill.state).toBe('WAIT_USER_CONFIRM')
      expect(list.json.cashbacks).toEqual([
        expect.objectContaining({
          outBillNo: no,
          amountFen: 5000,
          state: 'wait_user_confirm',
          confirm: {
            mchId: shop.gateway.mchid,
            appId: shop.settings.mpAppid,
            package: bill.packageInfo,
          },
        }),
      ])
      expect(JSON.parse(pay.transferRequests(no)[0]!)).toEqual({
        appid: shop.settings.mpAppid,
        out_bill_no: no,
        transfer_scene_id: '1000',
        openid: u.mp!.openid,
        transfer_amount: 5000,
        transfer_remark: '积分兑换返现',
        notify_url: notifyUrl(),
        user_recv_perception: '现金奖励',
        transfer_scene_report_infos: [
          { info_type: '活动名称', info_content: '积分兑换' },
          { info_type: '奖励说明', info_content: '积分兑换现金奖励' },
        ],
      })

      // Only the payee sees it, and only they get the package.
      const other = await login()
      expect((await api('/cashbacks', other.token)).json.cashbacks).toEqual([])
      expect((await api(`/cashbacks/${no}`, other.token)).status).toBe(404)

      // The member confirms in the mini program; WeChat Pay's notification is verified and applied.
      const { answer } = await pay.confirmTransfer(no)
      expect(answer!.status).toBe(204)
      const after = await api(`/cashbacks/${no}`, u.mp!.token)
      expect(after.json.cashback).toMatchObject({ state: 'success', confirm: null })
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
      expect(await redemption(row.redemption_id)).toEqual({ status: 'issued' })
      const notice = await get()
        .db.selectFrom('push_outbox')
        .select('payload')
        .where('source', '=', `transfer:${row.id}`)
        .executeTakeFirstOrThrow()
      expect(JSON.stringify(notice.payload)).toContain('50.00 元返现已转入你的微信零钱')
      // A paid-out cashback cannot be cancelled by an operator.
      expect((await admin('POST', `/redemptions/${row.redemption_id}/cancel`)).status).toBe(409)
    })

    it('pays a follower whose mini-program sign-in is another member, linked by the unionid WeChat knows', async () => {
      const u = await follower(5000, { knownUnionid: false })
      expect(u.mp!.memberId).not.toBe(u.id)
      const reply = await redeem(u.openid)
      expect(reply).toContain('兑换成功 💰 50元返现')
      const row = await transferOf(u.id)
      expect(row).toMatchObject({ openid: u.mp!.openid, member_id: u.id, state: 'pending' })
      const list = await api('/cashbacks', u.mp!.token)
      expect(list.json.cashbacks).toEqual([
        expect.objectContaining({ outBillNo: row.out_bill_no, state: 'wait_user_confirm' }),
      ])
      expect(list.json.cashbacks[0].confirm.package).toBe(
        pay.transfer(row.out_bill_no)!.packageInfo,
      )
      await pay.confirmTransfer(row.out_bill_no)
      expect((await transferOf(u.id)).state).toBe('success')
    })

    it('returns the points once when the member never confirms (FAIL OVERDUE_CLOSE), duplicates change nothing', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      const stock = await cashbackStock()
      // The shop's scheduled maintenance creates the bill.
      expect(await maintain()).toMatchObject({ transfersSent: 1, transferErrors: 0 })
      expect((await transferOf(u.id)).state).toBe('wait_user_confirm')
      // 24 hours without confirmation: WeChat Pay closes it and says so.
      const { answer } = await pay.failTransfer(row.out_bill_no)
      expect(answer!.status).toBe(204)
      expect(await transferOf(u.id)).toMatchObject({ state: 'fail', fail_reason: 'OVERDUE_CLOSE' })
      expect(await pointsLedger(u.id)).toEqual([
        { rule: 'redeem', delta: -5000 },
        { rule: 'redeem_refund', delta: 5000 },
      ])
      expect(await redemption(row.redemption_id)).toEqual({ status: 'cancelled' })
      expect(await cashbackStock()).toBe(stock! + 1)
      const points = await balance(u.id)
      // The same notification again, and once more under a new id: nothing changes.
      const again = pay.transferNotification(row.out_bill_no)
      for (const n of [again, again, pay.transferNotification(row.out_bill_no)])
        expect((await pay.deliver(notifyUrl(), n)).status).toBe(204)
      expect(await pointsLedger(u.id)).toHaveLength(2)
      expect(await balance(u.id)).toBe(points)
      expect(await cashbackStock()).toBe(stock! + 1)
      // The member may redeem it again: a new transfer with its own bill number.
      expect(await redeem(u.openid)).toContain('兑换成功')
      expect((await transferOf(u.id)).out_bill_no).not.toBe(row.out_bill_no)
    })

    it('cancels a bill still unconfirmed after 24 hours, and an operator can cancel one (CANCELLED returns the points once)', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      await maintain()
      expect((await transferOf(u.id)).state).toBe('wait_user_confirm')
      // The bill's age is moved back rather than the clock forward: WeChat Pay's notifications
      // carry the real time, which a clock 24 hours ahead would refuse as stale.
      const age = (ms: number) =>
        get()
          .db.updateTable('transfers')
          .set({
            accepted_at: new Date(Date.now() - ms),
            next_attempt_at: new Date(Date.now() - 1000),
          })
          .where('id', '=', row.id)
          .execute()
      // An hour later it is asked about, and left alone; after 24 hours it is cancelled.
      await age(HOUR + 60_000)
      await maintain()
      expect(pay.transfer(row.out_bill_no)!.state).toBe('WAIT_USER_CONFIRM')
      expect((await transferOf(u.id)).state).toBe('wait_user_confirm')
      await age(24 * HOUR + 60_000)
      expect(await maintain()).toMatchObject({ transfersPolled: 1, transferErrors: 0 })
      await pay.transfersIdle()
      expect(pay.transfer(row.out_bill_no)!.state).toBe('CANCELLED')
      expect(await transferOf(u.id)).toMatchObject({ state: 'cancelled' })
      expect(await pointsLedger(u.id)).toEqual([
        { rule: 'redeem', delta: -5000 },
        { rule: 'redeem_refund', delta: 5000 },
      ])
      const dup = pay.transferNotification(row.out_bill_no)
      expect((await pay.deliver(notifyUrl(), dup)).status).toBe(204)
      expect(await pointsLedger(u.id)).toHaveLength(2)

      // An operator cancels a cashback WeChat Pay has: cancelled there, points back once.
      const v = await follower(5000)
      await redeem(v.openid)
      const sent = await transferOf(v.id)
      await api('/cashbacks', v.mp!.token)
      const cancel = await admin('POST', `/redemptions/${sent.redemption_id}/cancel`)
      expect(cancel.status).toBe(200)
      expect(cancel.json.status).toMatch(/^cancel/)
      await pay.transfersIdle()
      expect(await transferOf(v.id)).toMatchObject({ state: 'cancelled' })
      expect(await pointsLedger(v.id)).toEqual([
        { rule: 'redeem', delta: -5000 },
        { rule: 'redeem_refund', delta: 5000 },
      ])
      // …and one never sent is cancelled here, without calling WeChat Pay.
      const w = await follower(5000)
      await redeem(w.openid)
      const unsent = await transferOf(w.id)
      const local = await admin('POST', `/redemptions/${unsent.redemption_id}/cancel`)
      expect(local.json).toMatchObject({ status: 'cancelled', transfer: 'cancelled' })
      expect(pay.transferRequests(unsent.out_bill_no)).toEqual([])
      expect(await pointsLedger(w.id)).toHaveLength(2)
      expect(await maintain()).toMatchObject({ transferErrors: 0 })
      expect(pay.transferRequests(unsent.out_bill_no)).toEqual([])
    })

    it('retries a create that got no answer or a 500 with the same out_bill_no and the same body', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      const no = row.out_bill_no
      // The first create is carried out but its answer is lost; the second gets a 500.
      pay.faultTransferCreates('drop', 'error')
      try {
        expect(await maintain()).toMatchObject({ transfersSent: 0 })
        expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 1 })
        // The configuration changes meanwhile: a retry still sends the body first sent.
        shop.settings.transfer = { ...DEFAULT_TRANSFER_SETTINGS, remark: '改过的转账备注' }
        // Not again before its back-off…
        offset.ms = 30_000
        await maintain()
        expect(pay.transferRequests(no)).toHaveLength(1)
        offset.ms = transferRetryDelayMs(1) + 1000
        await maintain()
        expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 2 })
        offset.ms += transferRetryDelayMs(2) + 1000
        expect(await maintain()).toMatchObject({ transfersSent: 1 })
      } finally {
        offset.ms = 0
        shop.settings.transfer = undefined
      }
      const done = await transferOf(u.id)
      expect(done.state).toBe('wait_user_confirm')
      const sent = pay.transferRequests(no)
      expect(sent).toHaveLength(3)
      expect(JSON.parse(done.request_body!).transfer_remark).toBe('积分兑换返现')
      expect(new Set(sent)).toEqual(new Set([done.request_body]))
      // One bill: the one the lost call made, and its package reached us.
      expect(done.package_info).toBe(pay.transfer(no)!.packageInfo)
      // WeChat Pay refuses the same number with another body.
      const changed = { ...JSON.parse(done.request_body!), transfer_amount: 4999 }
      await expect(shop.gateway.createTransfer(changed)).rejects.toMatchObject({
        status: 400,
        code: 'INVALID_REQUEST',
      })
      await pay.confirmTransfer(no)
      expect((await transferOf(u.id)).state).toBe('success')
    })

    it('ends a refused create only when WeChat Pay has no such bill, returning the points', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      // Not enough funds: the same bill again later.
      pay.faultTransferCreates({ status: 403, code: 'NOT_ENOUGH', message: '资金不足' })
      await maintain()
      expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 1 })
      // A refusal: asked about, unknown to WeChat Pay, so it ends and the points come back.
      pay.faultTransferCreates({
        status: 400,
        code: 'INVALID_REQUEST',
        message: '你尚未获取该转账场景',
      })
      try {
        offset.ms = transferRetryDelayMs(1) + 1000
        await maintain()
      } finally {
        offset.ms = 0
      }
      expect(await transferOf(u.id)).toMatchObject({
        state: 'fail',
        fail_reason: 'INVALID_REQUEST',
      })
      expect(pay.transfer(row.out_bill_no)).toBeUndefined()
      expect(await pointsLedger(u.id)).toEqual([
        { rule: 'redeem', delta: -5000 },
        { rule: 'redeem_refund', delta: 5000 },
      ])
    })

    it('keeps a bill whose create got a 4xx page WeChat Pay did not sign (a proxy): not refused, sent again, no points back', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      pay.faultTransferCreates({ status: 403, text: '<html><body>403 Forbidden</body></html>' })
      await maintain()
      // WeChat Pay may have the bill behind that page: not ended, its points not returned
      expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 1 })
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
      try {
        offset.ms = transferRetryDelayMs(1) + 1000
        await maintain()
      } finally {
        offset.ms = 0
      }
      expect(pay.transfer(row.out_bill_no)).toBeDefined()
    })

    it('keeps a refused bill when the query’s 404 is not WeChat Pay’s “no such bill” (a proxy): no points back for a bill that exists', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      const later = async (ms: number) => {
        try {
          offset.ms = ms
          return await maintain()
        } finally {
          offset.ms = 0
        }
      }
      // WeChat Pay creates the bill, but its answer is lost: the same bill again later
      pay.faultTransferCreates('drop')
      await maintain()
      expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 1 })
      expect(pay.transfer(row.out_bill_no)?.state).toBe('WAIT_USER_CONFIRM')
      // the retry is refused, and the query that decides whether it ends meets a proxy's 404
      pay.faultTransferCreates({ status: 400, code: 'INVALID_REQUEST', message: '参数错误' })
      pay.faultTransferQueries({ status: 404, text: '<html><h1>404 Not Found</h1></html>' })
      const first = transferRetryDelayMs(1) + 1000
      await later(first)
      // not WeChat Pay's NOT_FOUND: nothing decided, the bill is kept and the points stay spent
      expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 2 })
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
      // a 404 of WeChat Pay's shape with another code decides nothing either
      pay.faultTransferCreates({ status: 400, code: 'INVALID_REQUEST', message: '参数错误' })
      pay.faultTransferQueries({ status: 404, code: 'RESOURCE_NOT_EXISTS', message: '资源不存在' })
      const second = first + transferRetryDelayMs(2) + 1000
      await later(second)
      expect(await transferOf(u.id)).toMatchObject({ state: 'pending', attempts: 3 })
      // the next send finds the bill (same number, same body); the member confirms and is paid once
      await later(second + transferRetryDelayMs(3) + 1000)
      expect((await transferOf(u.id)).state).toBe('wait_user_confirm')
      await pay.confirmTransfer(row.out_bill_no)
      expect((await transferOf(u.id)).state).toBe('success')
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
    })

    it('keeps a bill whose ten creates all went unanswered although WeChat Pay does not know it yet, and sends it again', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      const row = await transferOf(u.id)
      const deps = { db: get().db, shop, timeZone: TZ, logger: silentLogger }
      // every create answers 500 SYSTEM_ERROR (WeChat Pay asks for the same number again)
      let at = Date.now()
      for (let i = 1; i <= TRANSFER_MAX_ATTEMPTS; i++) {
        pay.faultTransferCreates('error')
        expect(await sendTransfer(deps, row.out_bill_no, new Date(at))).toBe('pending')
        at += transferRetryDelayMs(i)
      }
      // out of tries, and the query answers NOT_FOUND: a bill still being accepted is not found
      // either — kept, the points stay spent, sent again later
      const kept = await transferOf(u.id)
      expect(kept).toMatchObject({ state: 'pending', attempts: TRANSFER_MAX_ATTEMPTS })
      expect(kept.next_attempt_at!.getTime()).toBe(at) // the last try's back-off
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
      // WeChat Pay answers again: the same bill is created, the member confirms and is paid
      expect(await sendTransfer(deps, row.out_bill_no, new Date(at))).toBe('wait_user_confirm')
      await pay.confirmTransfer(row.out_bill_no)
      expect((await transferOf(u.id)).state).toBe('success')
      expect(await pointsLedger(u.id)).toEqual([{ rule: 'redeem', delta: -5000 }])
    })

    it('refuses cashback below 10 fen, and pays a 10-fen one', async () => {
      const small = { code: 40, name: '一毛返现', cost: 10 }
      const below = await admin('POST', '/rewards', { ...small, cashbackFen: 9 })
      expect(below.status).toBe(400)
      expect(JSON.stringify(below.json)).toContain('cashbackFen')
      const created = await admin('POST', '/rewards', { ...small, cashbackFen: 10 })
      expect(created.status).toBe(201)
      expect(created.json).toMatchObject({ kind: 'cashback', cashback_fen: 10 })
      await expect(
        get()
          .db.updateTable('rewards')
          .set({ cashback_fen: 9 })
          .where('appid', '=', SAFE_ACCOUNT.appid)
          .where('code', '=', 40)
          .execute(),
      ).rejects.toThrow(/check constraint/)
      // WeChat Pay (the sandbox) refuses less than 0.1 元 too.
      const refused = await shop.gateway
        .createTransfer({
          appid: shop.settings.mpAppid,
          out_bill_no: `QTSMALL${Date.now()}`,
          transfer_scene_id: '1000',
          openid: 'o_anyone',
          transfer_amount: 9,
          transfer_remark: '积分兑换返现',
          transfer_scene_report_infos: [
            { info_type: '活动名称', info_content: '积分兑换' },
            { info_type: '奖励说明', info_content: '积分兑换现金奖励' },
          ],
        })
        .catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(PayApiError)
      expect(refused).toMatchObject({ status: 400, code: 'INVALID_REQUEST' })
      const u = await follower(100)
      expect(await redeem(u.openid, 40)).toContain('0.10 元')
      const list = await api('/cashbacks', u.mp!.token)
      expect(list.json.cashbacks[0]).toMatchObject({ amountFen: 10, state: 'wait_user_confirm' })
    })

    it('finds out about a lost notification: the page asks after confirming, the poll asks later', async () => {
      const u = await follower(5000)
      await redeem(u.openid)
      await api('/cashbacks', u.mp!.token)
      const a = await transferOf(u.id)
      await pay.confirmTransfer(a.out_bill_no, { deliver: false })
      expect((await transferOf(u.id)).state).toBe('wait_user_confirm')
      // wx.requestMerchantTransfer's success is a hint: the page asks us, we ask WeChat Pay.
      const asked = await api(`/cashbacks/${a.out_bill_no}`, u.mp!.token)
      expect(asked.json.cashback).toMatchObject({ state: 'success' })

      const v = await follower(5000)
      await redeem(v.openid)
      await maintain()
      const b = await transferOf(v.id)
      await pay.failTransfer(b.out_bill_no, { failReason: 'TRANSFER_RISK', deliver: false })
      try {
        offset.ms = HOUR + 60_000
        expect(await maintain()).toMatchObject({ transferErrors: 0 })
      } finally {
        offset.ms = 0
      }
      expect(await transferOf(v.id)).toMatchObject({ state: 'fail', fail_reason: 'TRANSFER_RISK' })
      expect(await pointsLedger(v.id)).toHaveLength(2)
    })

    it.runIf(dbName === 'postgres')(
      'returns the points once when two notifications and a poll race (PostgreSQL)',
      async () => {
        const u = await follower(5000)
        await redeem(u.openid)
        await maintain()
        const row = await transferOf(u.id)
        const stock = await cashbackStock()
        await pay.failTransfer(row.out_bill_no, { deliver: false })
        const first = pay.transferNotification(row.out_bill_no)
        const second = pay.transferNotification(row.out_bill_no)
        await get()
          .db.updateTable('transfers')
          .set({ next_attempt_at: new Date(Date.now() - 1000) })
          .where('id', '=', row.id)
          .execute()
        const other = get().open()
        const [a, b, c, poll] = await Promise.all([
          pay.deliver(notifyUrl(), first),
          pay.deliver(notifyUrl(), second),
          pay.deliver(notifyUrl(), first),
          maintain(other),
        ])
        expect([a.status, b.status, c.status]).toEqual([204, 204, 204])
        expect(poll.transferErrors).toBe(0)
        expect(await pointsLedger(u.id)).toEqual([
          { rule: 'redeem', delta: -5000 },
          { rule: 'redeem_refund', delta: 5000 },
        ])
        expect(await cashbackStock()).toBe(stock! + 1)
        expect(await redemption(row.redemption_id)).toEqual({ status: 'cancelled' })
      },
    )
  },
)
