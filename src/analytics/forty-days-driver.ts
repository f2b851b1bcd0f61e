/**
 * Plays the 40-day script (forty-days-script.ts) against a running app: pushes through the signed
 * webhook (follows with their QR scene, 签到, messages, menu clicks, 邀请, unfollows), the nightly
 * rollup job, the campaign through the operator API, the campaigns job, the outbox drained to the
 * fake WeChat API, delivery receipts pushed back, tracked links followed, and alerts evaluated.
 *
 * Orders and refunds go through the shop's service functions (createOrder → applyTransaction,
 * requestRefund → settleRefund) with a stand-in Pay gateway, not through /pay/notify: the sandbox
 * Pay server signs its notifications with the wall clock, which the injected 2026-10 clock would
 * refuse as stale (a notification must be within 5 minutes of now).
 */
import type { Kysely } from 'kysely'
import { analyticsRollupJob } from '../../jobs/analytics-rollup.js'
import { campaignsJob } from '../../jobs/campaigns.js'
import { SAFE_ACCOUNT, type TestServer } from '../../test/server.js'
import { inviteCode } from '../community/invites.js'
import { drainOutbox } from '../community/outbox.js'
import type { Config } from '../config.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import type { PayGateway } from '../pay/gateway.js'
import { createPusher } from '../sandbox/pusher.js'
import type { SandboxApi } from '../sandbox/wechat-api-server.js'
import { applyTransaction, createOrder } from '../shop/orders.js'
import { requestRefund, settleRefund } from '../shop/refunds.js'
import type { ApiClient } from '../wechat/api/client.js'
import { type AlertOutcome, evaluateAlerts } from './alerts.js'
import {
  ALERT_DAYS,
  ALERT_MINUTES,
  actor,
  at,
  CAMPAIGN,
  DAYS,
  PRICES,
  type Script,
  type Step,
} from './forty-days-script.js'

const TZ = 'Asia/Shanghai'
export const MP_APPID = 'wxmp4000000000001'
export const ROBOTS = (wx: SandboxApi) => ({ keys: { ops: 'robot-ops' }, baseUrl: wx.url })

/** A stand-in WeChat Pay: prepays and accepts refunds (what the shop's service functions call). */
const gateway = {
  appid: MP_APPID,
  mchid: '1900000040',
  jsapi: async (o: { outTradeNo: string }) => ({
    appId: MP_APPID,
    timeStamp: '0',
    nonceStr: 'n',
    package: `prepay_id=pp_${o.outTradeNo}`,
    signType: 'RSA' as const,
    paySign: 's',
  }),
  refund: async (o: { outRefundNo: string }) => ({
    refund_id: `rf_${o.outRefundNo}`,
    out_refund_no: o.outRefundNo,
    status: 'PROCESSING',
  }),
} as unknown as PayGateway // the shop calls only these two here
const shopSettings = {
  appid: SAFE_ACCOUNT.appid,
  mpAppid: MP_APPID,
  notifyUrl: 'https://quanzi.example/pay/notify',
  orderMinutes: 15,
  groupBuy: { size: 3, max: 5, hours: 24 },
  pointsFreezeDays: 7,
}

/** What the run observed that the script cannot know in advance. */
export interface RunRecord {
  /** Campaign recipients: openid → variant, read from the template messages WeChat received. */
  variants: Map<string, string>
  delivered: Set<string>
  clicked: Set<string>
  alerts: { day: number; minute: number; outcomes: AlertOutcome[] }[]
  campaignId: number
}

interface Env {
  db: Kysely<Database>
  server: TestServer
  wx: SandboxApi
  config: Config
  api: () => ApiClient
  time: { now: Date }
  /** Members pushing at once within a minute (1 on PGlite: one connection). */
  concurrency: number
  // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked where it is read
  admin: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any }>
}

type Event = { at: Date; run: () => Promise<void> }

/** Plays the script day by day; returns what only the run can tell. */
export async function playScript(script: Script, env: Env): Promise<RunRecord> {
  const { db, wx } = env
  const appid = SAFE_ACCOUNT.appid
  const chat = createPusher({
    url: `${env.server.url}/wechat`,
    account: SAFE_ACCOUNT,
    now: () => env.time.now.getTime(),
  })
  const record: RunRecord = {
    variants: new Map(),
    delivered: new Set(),
    clicked: new Set(),
    alerts: [],
    campaignId: 0,
  }
  const codes = new Map<string, string>()
  const orders = new Map<number, string>()
  const member = (openid: string) =>
    db
      .selectFrom('members')
      .selectAll()
      .where('appid', '=', appid)
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
  const ok = async (p: Promise<{ status: number }>) => {
    const r = await p
    if (r.status !== 200) throw new Error(`push refused: ${r.status}`)
  }
  const drain = () =>
    drainOutbox({
      db,
      api: env.api(),
      appid,
      clock: { now: () => env.time.now },
      logger: silentLogger,
      timeZone: TZ,
      rate: { perSecond: 0, burst: 1 },
      quietHours: env.config.campaigns.quietHours,
    })
  const job = (j: typeof campaignsJob) =>
    j.run({
      db,
      clock: { now: () => env.time.now },
      logger: silentLogger,
      config: env.config,
      slot: env.time.now,
    })

  const step = async (s: Step) => {
    if (s.kind === 'follow') {
      const m = script.members.find((x) => x.openid === s.openid)!
      const key =
        m.source === 'invite'
          ? `qrscene_inv_${codes.get(m.inviter!)}`
          : m.source === 'qr'
            ? 'qrscene_poster-7'
            : undefined
      await ok(chat.event(s.openid, 'subscribe', key ? { EventKey: key } : {}))
    } else if (s.kind === 'unfollow') await ok(chat.event(s.openid, 'unsubscribe'))
    else if (s.kind === 'checkin') await ok(chat.text(s.openid, '签到'))
    else if (s.kind === 'text') await ok(chat.text(s.openid, '你好'))
    else if (s.kind === 'click') await ok(chat.event(s.openid, 'CLICK', { EventKey: 'MENU_HELP' }))
    else if (s.kind === 'share') {
      await ok(chat.text(s.openid, '邀请'))
      codes.set(s.openid, await inviteCode(db, await member(s.openid), env.time.now))
    } else if (s.kind === 'order') {
      const m = await member(s.openid)
      const now = env.time.now
      const made = await createOrder(db, gateway, shopSettings, {
        memberId: m.id,
        mpOpenid: `mp_${s.openid}`,
        sku: s.sku,
        now,
      })
      if (made.status !== 'created') throw new Error(`order refused: ${made.status}`)
      const no = made.order.out_trade_no
      const paid = await applyTransaction(
        db,
        gateway,
        shopSettings,
        {
          out_trade_no: no,
          transaction_id: `4200${s.no}`,
          trade_state: 'SUCCESS',
          appid: MP_APPID,
          mchid: gateway.mchid,
          amount: { total: PRICES[s.sku], payer_total: PRICES[s.sku], currency: 'CNY' },
        },
        { eventId: `EV-${s.no}`, eventType: 'TRANSACTION.SUCCESS', now, timeZone: TZ },
      )
      if (paid !== 'paid') throw new Error(`payment not applied: ${paid}`)
      orders.set(s.no, no)
    } else if (s.kind === 'refund') {
      const outRefundNo = `RF40${s.order}`
      const r = await requestRefund(db, gateway, shopSettings, {
        outTradeNo: orders.get(s.order)!,
        amountFen: s.fen,
        reason: '退款',
        outRefundNo,
        now: env.time.now,
      })
      if (r.status !== 'requested') throw new Error(`refund refused: ${r.status}`)
      if ((await settleRefund(db, outRefundNo, 'SUCCESS', env.time.now)) !== 'settled')
        throw new Error('refund not settled')
    }
  }
  // The steps of one minute run together, as WeChat would push them (each member's in order,
  // `concurrency` members at a time): all at the minute's instant.
  const blocks = new Map<string, Step[]>()
  for (const s of script.steps) {
    const key = `${s.day}:${s.minute}`
    blocks.set(key, [...(blocks.get(key) ?? []), s])
  }
  const events: Event[] = [...blocks.values()].map((list) => ({
    at: at(list[0]!.day, list[0]!.minute),
    run: async () => {
      const byActor = new Map<string, Step[]>()
      for (const s of list) byActor.set(actor(s), [...(byActor.get(actor(s)) ?? []), s])
      const queue = [...byActor.values()]
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift())
          for (const s of next) await step(s)
      }
      await Promise.all(Array.from({ length: env.concurrency }, worker))
    },
  }))
  for (let d = 1; d <= DAYS; d++)
    events.push({ at: at(d, 4 * 60), run: async () => void (await job(analyticsRollupJob)) })
  for (let d = 0; d < DAYS; d++)
    events.push({ at: at(d, 21 * 60 + 30), run: async () => void (await drain()) })
  events.push({
    at: at(CAMPAIGN.createDay, 14 * 60),
    run: async () => {
      const template = (key: string) => ({
        template_id: 'TPL_RECALL',
        data: { thing1: { value: `回归礼${key}` }, number2: { value: '{{points}}' } },
        url: `https://shop.example/recall?v=${key}`,
      })
      const created = await env.admin('POST', '/campaigns', {
        name: '回归礼 A/B',
        audience: {},
        variants: [
          { key: 'A', weight: 50, template: template('A') },
          { key: 'B', weight: 50, template: template('B') },
        ],
        schedule: { at: at(CAMPAIGN.sendDay, CAMPAIGN.sendMinute).toISOString() },
        conversionDays: CAMPAIGN.conversionDays,
      })
      if (created.status !== 201) throw new Error(`campaign: ${JSON.stringify(created.json)}`)
      record.campaignId = created.json.id
      await env.admin('POST', `/campaigns/${record.campaignId}/schedule`)
    },
  })
  const sent = () => wx.sent.filter((x) => x.method === 'template.send')
  events.push({
    at: at(CAMPAIGN.sendDay, CAMPAIGN.sendMinute),
    run: async () => {
      await job(campaignsJob)
      await drain()
      for (const x of sent()) {
        const data = x.body.data as Record<string, { value: string }>
        record.variants.set(x.touser, data.thing1!.value.slice(-1))
      }
    },
  })
  events.push({
    at: at(CAMPAIGN.sendDay, CAMPAIGN.sendMinute + 10),
    run: async () => {
      // WeChat's receipts: every seventh recipient had blocked the account
      for (const [i, x] of sent().entries()) {
        env.time.now = at(CAMPAIGN.sendDay, CAMPAIGN.sendMinute + 10, i)
        const status = i % 7 === 3 ? 'failed:user block' : 'success'
        await ok(
          chat.event(x.touser, 'TEMPLATESENDJOBFINISH', { MsgID: BigInt(x.msgid), Status: status }),
        )
        if (status === 'success') record.delivered.add(x.touser)
      }
    },
  })
  events.push({
    at: at(CAMPAIGN.sendDay, CAMPAIGN.sendMinute + 20),
    run: async () => {
      // clicks: every third recipient of B, every fourth of A
      for (const [i, x] of sent().entries()) {
        const variant = record.variants.get(x.touser)
        if (i % (variant === 'B' ? 3 : 4) !== 0) continue
        const code = String(x.body.url).split('/r/')[1]
        const res = await fetch(`${env.server.url}/r/${code}`, { redirect: 'manual' })
        if (res.status !== 302) throw new Error(`tracked link: ${res.status}`)
        record.clicked.add(x.touser)
      }
    },
  })
  for (let d = CAMPAIGN.sendDay; d <= CAMPAIGN.sendDay + CAMPAIGN.conversionDays; d++)
    events.push({ at: at(d, 23 * 60 + 30), run: async () => void (await job(campaignsJob)) })
  for (const day of ALERT_DAYS)
    for (const minute of ALERT_MINUTES)
      events.push({
        at: at(day, minute),
        run: async () => {
          const outcomes = await evaluateAlerts({
            db,
            appid,
            now: env.time.now,
            timeZone: TZ,
            locale: 'zh-CN',
            quietHours: env.config.campaigns.quietHours,
            robots: ROBOTS(wx),
            sends: true,
          })
          record.alerts.push({ day, minute, outcomes })
          await drain()
        },
      })
  // stable: steps keep their order within an instant, other events run before them
  events.sort((a, b) => a.at.getTime() - b.at.getTime())
  for (const e of events) {
    env.time.now = e.at
    await e.run()
  }
  return record
}
