/**
 * Issue #14's outbox defects: nothing sent twice (per-item results, lease renewal, no transport
 * retry of non-idempotent sends, unknown outcomes, the client_msg_id window), per-API pauses and
 * quiet hours, priority lanes, receipts that arrive early, tokens given back, and the
 * customer-service window's quota counted ahead of WeChat.
 */
import { spawn } from 'node:child_process'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { translator } from '../bot/i18n.js'
import { type Clock, systemClock } from '../clock.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { sendCustomMessage } from '../wechat/api/messages.js'
import { parseXml } from '../wechat/codec.js'
import { toInboundMessage } from '../wechat/message.js'
import { campaignReport } from './campaign-counts.js'
import { dispatchCampaigns } from './campaigns.js'
import { databaseInboundStore } from './inbound-events.js'
import { databaseMemberStore, isDuplicate } from './members.js'
import {
  CLIENT_MSG_ID_WINDOW_MS,
  cancelSource,
  claim,
  type DispatcherOptions,
  drainOutbox,
  enqueue,
  LANE,
  OPTED_OUT,
  type OutboxMessage,
  pruneOutbox,
  recordDelivery,
} from './outbox.js'
import { databaseTokenStore } from './token-store.js'

const SECRET = 'delivery-secret'
/** The sandbox's own clock, moved by the tests (client_msg_id memory). */
let sandboxNow = Date.now()
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET, now: () => sandboxNow })
})
afterAll(() => wx.close())
beforeEach(() => wx.clearFaults())

const template = { template_id: 'TPL_DELIVERY', data: { keyword1: { value: '到货提醒' } } }
const text = { msgtype: 'text', text: { content: '你好' } }

forEachDatabase('outbox delivery', (get, dbName) => {
  let n = 0
  const clock = {
    time: new Date('2026-11-24T02:00:00Z'), // 10:00 in Shanghai
    now() {
      return this.time
    },
  } satisfies Clock & { time: Date }
  const advance = (ms: number) => {
    clock.time = new Date(clock.time.getTime() + ms)
    sandboxNow += ms
  }
  function account(extra: Partial<DispatcherOptions> & { timeoutMs?: number } = {}) {
    const appid = `wx${dbName === 'pglite' ? 'c' : 'd'}${String(++n).padStart(15, '0')}`
    const db = extra.db ?? get().db
    const api = accountClient({
      tokenStore: databaseTokenStore(db, systemClock),
      appid,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock: { now: () => new Date() },
      logger: silentLogger,
      backoffMs: 1,
      timeoutMs: extra.timeoutMs,
    })
    const opts: DispatcherOptions = {
      db,
      api,
      appid,
      clock,
      logger: silentLogger,
      timeZone: 'Asia/Shanghai',
      rate: { perSecond: 0, burst: 1 },
      ...extra,
    }
    return opts
  }
  const rows = (appid: string) =>
    get()
      .db.selectFrom('push_outbox')
      .selectAll()
      .where('appid', '=', appid)
      .orderBy('id')
      .execute()
  const sentTo = (appid: string) => wx.sent.filter((s) => s.appid === appid)
  const message = (
    appid: string,
    openid: string,
    kind: 'template' | 'custom',
    source: string,
    extra: Partial<OutboxMessage> = {},
  ): OutboxMessage => ({
    appid,
    source,
    openid,
    kind,
    payload: kind === 'template' ? template : text,
    ...extra,
  })
  /** Members who wrote `ago` ms before the clock (their customer-service window is open). */
  async function wrote(db: Kysely<Database>, appid: string, openids: string[], ago = 60_000) {
    const at = new Date(clock.now().getTime() - ago)
    await db
      .insertInto('members')
      .values(
        openids.map((openid) => ({
          appid,
          openid,
          subscribed: true,
          subscribed_at: new Date(at.getTime() - 86_400_000),
          first_seen_at: at,
          last_inbound_at: at,
        })),
      )
      .execute()
    for (const openid of openids) wx.setUser(openid, { windowOpen: true, subscribe: true })
  }

  it('never lets the transport resend a customer-service message whose answer was lost', async () => {
    const o = account({ timeoutMs: 200 })
    await wrote(get().db, o.appid, ['cs_lost'])
    await enqueue(get().db, [message(o.appid, 'cs_lost', 'custom', 'notice:1')], clock.now())
    wx.fault('custom.send', ...Array.from({ length: 4 }, () => ({ dropResponse: true as const })))
    const summary = await drainOutbox(o)
    expect(summary).toMatchObject({ sent: 0, unknown: 1, retried: 0 })
    expect(sentTo(o.appid)).toHaveLength(1) // WeChat got it once, and only once
    const [row] = await rows(o.appid)
    expect(row).toMatchObject({ status: 'unknown' })
    advance(3600_000)
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, unknown: 0 })
    expect(sentTo(o.appid)).toHaveLength(1)
    wx.clearFaults()
  })

  it('sends a template whose answer was lost again only inside the client_msg_id window', async () => {
    const o = account({ timeoutMs: 200 })
    await enqueue(
      get().db,
      [
        message(o.appid, 'tpl_inside', 'template', 'notice:1'),
        message(o.appid, 'tpl_outside', 'template', 'notice:2'),
      ],
      clock.now(),
    )
    // every transport attempt of both sends is carried out by WeChat, and no answer comes back
    wx.fault('template.send', ...Array.from({ length: 8 }, () => ({ dropResponse: true as const })))
    expect(await drainOutbox({ ...o, concurrency: 1 })).toMatchObject({ retried: 2, sent: 0 })
    expect(sentTo(o.appid)).toHaveLength(2) // de-duplicated by client_msg_id: one each
    const waiting = await rows(o.appid)
    expect(waiting.map((r) => r.status)).toEqual(['pending', 'pending'])
    expect(waiting.every((r) => r.attempt_started_at !== null)).toBe(true)

    // 31 s later the first goes again with the same client_msg_id: WeChat answers with the same msgid
    advance(31_000)
    await get()
      .db.updateTable('push_outbox')
      .set({ next_attempt_at: new Date(clock.now().getTime() + 3600_000) })
      .where('appid', '=', o.appid)
      .where('openid', '=', 'tpl_outside')
      .execute()
    expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
    expect(sentTo(o.appid)).toHaveLength(2)
    const inside = (await rows(o.appid)).find((r) => r.openid === 'tpl_inside')!
    expect(inside).toMatchObject({ status: 'sent' })
    expect(inside.wechat_msgid).toBe(
      String(sentTo(o.appid).find((s) => s.touser === 'tpl_inside')!.msgid),
    )

    // the other is due after WeChat forgot its client_msg_id: sending it again could deliver twice
    advance(CLIENT_MSG_ID_WINDOW_MS + 3600_000)
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, unknown: 1 })
    expect(sentTo(o.appid)).toHaveLength(2)
    expect((await rows(o.appid)).find((r) => r.openid === 'tpl_outside')).toMatchObject({
      status: 'unknown',
    })
  })

  it('sends the templates of a dead claim that never reached them, however late it is taken over', async () => {
    const o = account()
    await enqueue(
      get().db,
      ['dead_1', 'dead_2', 'dead_3'].map((id) => message(o.appid, id, 'template', 'notice:dead')),
      clock.now(),
    )
    // a claim whose process died before sending anything
    const lease = new Date(clock.now().getTime() + 60_000)
    const claimed = await claim(get().db, {
      appid: o.appid,
      lane: LANE.notice,
      limit: 10,
      token: 'dead-claim',
      lease,
      now: clock.now(),
    })
    expect(claimed).toHaveLength(3)
    advance(20 * 60_000) // long past the client_msg_id window
    expect(await drainOutbox(o)).toMatchObject({ sent: 3, unknown: 0 })
    expect(sentTo(o.appid)).toHaveLength(3)
  })

  it('holds a paused campaign’s item that comes back from a retry; finish cancels a dead claim’s', async () => {
    const o = account()
    const campaign = async (status: 'running' | 'paused') =>
      (
        await get()
          .db.insertInto('campaigns')
          .values({
            appid: o.appid,
            name: status,
            status,
            audience: '{}',
            variants: '[]',
            run_at: clock.now(),
            created_at: clock.now(),
            updated_at: clock.now(),
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id
    const paused = await campaign('paused')
    // claimed before the pause, then WeChat answers 503 (certainly not delivered: a retry)
    await enqueue(
      get().db,
      [message(o.appid, 'moved_p', 'template', `campaign:${paused}:x`, { lane: LANE.campaign })],
      clock.now(),
    )
    wx.fault('template.send', ...Array.from({ length: 4 }, () => ({ status: 503 })))
    expect(await drainOutbox(o)).toMatchObject({ retried: 1 })
    expect((await rows(o.appid)).map((r) => r.status)).toEqual(['held'])

    // a claim that died holding a running campaign's items — one of them marked: its send had
    // started, so it may have been delivered — then the campaign is finished
    const running = await campaign('running')
    await enqueue(
      get().db,
      [
        message(o.appid, 'moved_f', 'template', `campaign:${running}:x`, { lane: LANE.campaign }),
        message(o.appid, 'moved_s', 'template', `campaign:${running}:y`, { lane: LANE.campaign }),
      ],
      clock.now(),
    )
    await claim(get().db, {
      appid: o.appid,
      lane: LANE.campaign,
      limit: 10,
      token: 'dead',
      lease: new Date(clock.now().getTime() + 60_000),
      now: clock.now(),
    })
    await get()
      .db.updateTable('push_outbox')
      .set({ attempt_started_at: clock.now() })
      .where('appid', '=', o.appid)
      .where('openid', '=', 'moved_s')
      .execute()
    advance(61_000)
    expect(await cancelSource(get().db, o.appid, `campaign:${running}:`, clock.now())).toBe(2)
    expect(await drainOutbox(o)).toMatchObject({ sent: 0 })
    const after = await rows(o.appid)
    expect(after.find((r) => r.openid === 'moved_f')!.status).toBe('cancelled')
    // reported as unknown, not "cancelled unsent"
    expect(after.find((r) => r.openid === 'moved_s')!.status).toBe('unknown')
  })

  it('holds a paused journey’s item that comes back from a retry', async () => {
    const o = account()
    const journey = await get()
      .db.insertInto('journeys')
      .values({
        appid: o.appid,
        key: 'welcome',
        name: 'welcome',
        segment: 'new',
        status: 'paused',
        steps: '[]',
        created_at: clock.now(),
        updated_at: clock.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    // claimed before the pause, then WeChat answers 503 (certainly not delivered: a retry)
    await enqueue(
      get().db,
      [
        message(o.appid, 'moved_j', 'template', `journey:${journey.id}:0:1`, {
          lane: LANE.campaign,
        }),
      ],
      clock.now(),
    )
    wx.fault('template.send', ...Array.from({ length: 4 }, () => ({ status: 503 })))
    expect(await drainOutbox(o)).toMatchObject({ retried: 1 })
    expect((await rows(o.appid)).map((r) => r.status)).toEqual(['held'])
  })

  it('gives a counted customer-service send back when it certainly did not go', async () => {
    const o = account()
    await wrote(get().db, o.appid, ['cs_refund'])
    await enqueue(get().db, [message(o.appid, 'cs_refund', 'custom', 'notice:r1')], clock.now())
    wx.fault('custom.send', ...Array.from({ length: 4 }, () => ({ errcode: -1, errmsg: 'busy' })))
    expect(await drainOutbox(o)).toMatchObject({ retried: 1 })
    const counted = await get()
      .db.selectFrom('cs_window_sends')
      .select('sent')
      .where('appid', '=', o.appid)
      .executeTakeFirstOrThrow()
    expect(counted.sent).toBe(0)
    advance(31_000)
    expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
  })

  it('renews the lease while a slow claim is being sent, so no other dispatcher takes it', async () => {
    const o = account({ clock: systemClock, leaseMs: 300, concurrency: 1, batchSize: 10 })
    const openids = ['slow_1', 'slow_2', 'slow_3', 'slow_4']
    const saved = clock.time
    clock.time = new Date() // members who wrote a minute ago, by the real clock
    await wrote(get().db, o.appid, openids)
    clock.time = saved
    await enqueue(
      get().db,
      openids.map((id) => message(o.appid, id, 'custom', 'notice:slow')),
      new Date(),
    )
    wx.setLatency(150) // 4 × 150 ms: twice the lease
    try {
      const slow = drainOutbox(o)
      const other = (async () => {
        const other = { ...o, db: dbName === 'postgres' ? get().open() : o.db }
        let sent = 0
        for (let i = 0; i < 12; i++) {
          sent += (await drainOutbox(other)).sent
          await new Promise((r) => setTimeout(r, 50))
        }
        return sent
      })()
      const [first, second] = await Promise.all([slow, other])
      expect(first.sent + second).toBe(4)
    } finally {
      wx.setLatency(0)
    }
    expect(sentTo(o.appid)).toHaveLength(4)
    expect((await rows(o.appid)).every((r) => r.status === 'sent')).toBe(true)
  })

  it('pauses only the API that hit its daily quota, until the quota resets', async () => {
    const o = account({ concurrency: 1 })
    await wrote(get().db, o.appid, ['q_reply'])
    await enqueue(
      get().db,
      [
        message(o.appid, 'q_tpl1', 'template', 'campaign:9:x', { lane: LANE.campaign }),
        message(o.appid, 'q_tpl2', 'template', 'campaign:9:x', { lane: LANE.campaign }),
        message(o.appid, 'q_reply', 'custom', 'reply:1', { lane: LANE.reply }),
      ],
      clock.now(),
    )
    wx.fault('template.send', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    const summary = await drainOutbox(o)
    expect(summary).toMatchObject({ sent: 1, paused: true })
    const byOpenid = Object.fromEntries((await rows(o.appid)).map((r) => [r.openid, r]))
    expect(byOpenid.q_reply).toMatchObject({ status: 'sent' })
    const midnight = new Date('2026-11-24T16:00:00Z') // 00:00 in Beijing
    for (const id of ['q_tpl1', 'q_tpl2']) {
      expect(byOpenid[id]).toMatchObject({ status: 'pending', attempts: 0 })
      expect(byOpenid[id]!.next_attempt_at.toISOString()).toBe(midnight.toISOString())
    }
    const pause = await get()
      .db.selectFrom('outbox_pauses')
      .selectAll()
      .where('appid', '=', o.appid)
      .execute()
    expect(pause.map((p) => [p.api, p.paused_until.toISOString()])).toEqual([
      ['template', midnight.toISOString()],
    ])
    // a customer-service message enqueued during the pause still goes
    await enqueue(get().db, [message(o.appid, 'q_reply', 'custom', 'reply:2')], clock.now())
    expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
    const saved = clock.time
    clock.time = new Date(midnight.getTime() + 1000)
    expect(await drainOutbox(o)).toMatchObject({ sent: 2 })
    clock.time = saved
  })

  it('holds campaign items in quiet hours when claiming them, never replies or notices', async () => {
    const o = account({ quietHours: { from: 22 * 60, to: 8 * 60 } })
    await wrote(get().db, o.appid, ['quiet_reply'])
    // enqueued at 21:59 (before the quiet hours), still queued at 22:30
    const before = new Date('2026-11-24T13:59:00Z')
    await enqueue(
      get().db,
      [
        message(o.appid, 'quiet_c1', 'template', 'campaign:7:x', { lane: LANE.campaign }),
        message(o.appid, 'quiet_n1', 'template', 'order:1', { lane: LANE.notice }),
        message(o.appid, 'quiet_reply', 'custom', 'reply:9', { lane: LANE.reply }),
      ],
      before,
    )
    const saved = clock.time
    clock.time = new Date('2026-11-24T14:30:00Z') // 22:30 in Shanghai
    try {
      expect(await drainOutbox(o)).toMatchObject({ sent: 2 })
      const campaign = (await rows(o.appid)).find((r) => r.openid === 'quiet_c1')!
      expect(campaign.status).toBe('pending')
      expect(campaign.next_attempt_at.toISOString()).toBe('2026-11-25T00:00:00.000Z') // 08:00
      expect(await drainOutbox(o)).toMatchObject({ sent: 0 })
      clock.time = new Date('2026-11-25T00:00:30Z')
      expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
    } finally {
      clock.time = saved
    }
  })

  it('claims replies before notices before campaigns, whatever was queued first', async () => {
    const o = account({ batchSize: 10, maxBatches: 1 })
    await wrote(get().db, o.appid, ['lane_reply'])
    const early = new Date(clock.now().getTime() - 60_000)
    await enqueue(
      get().db,
      Array.from({ length: 50 }, (_, i) =>
        message(o.appid, `lane_c${i}`, 'template', 'campaign:3:x', { lane: LANE.campaign }),
      ),
      early,
    )
    await enqueue(get().db, [message(o.appid, 'lane_n', 'template', 'order:2')], clock.now())
    await enqueue(
      get().db,
      [message(o.appid, 'lane_reply', 'custom', 'reply:3', { lane: LANE.reply })],
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 10 })
    // one claim of 10: the reply and the notice, then the 8 oldest campaign items
    const first = sentTo(o.appid).map((s) => s.touser)
    expect(first.filter((t) => !t.startsWith('lane_c')).sort()).toEqual(['lane_n', 'lane_reply'])
    expect(first.filter((t) => t.startsWith('lane_c'))).toHaveLength(8)
    expect((await rows(o.appid)).filter((r) => r.status === 'pending')).toHaveLength(42)
  })

  it('keeps a receipt that arrives before the send is stored, and closes templates on user block', async () => {
    const own = await startSandboxApi({ secret: SECRET })
    try {
      const o = account()
      o.api = accountClient({
        tokenStore: databaseTokenStore(get().db, systemClock),
        appid: o.appid,
        secret: SECRET,
        baseUrl: own.url,
        mode: 'stable',
        clock: { now: () => new Date() },
        logger: silentLogger,
      })
      // a fresh sandbox numbers its msgids from 1001: the receipt comes first
      expect(
        await recordDelivery(get().db, {
          appid: o.appid,
          msgid: '1001',
          status: 'success',
          now: clock.now(),
        }),
      ).toBe(false)
      await enqueue(get().db, [message(o.appid, 'early', 'template', 'campaign:4:x')], clock.now())
      expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
      expect((await rows(o.appid))[0]).toMatchObject({ wechat_msgid: '1001', delivery: 'success' })

      // failed:user block: no more templates to that member until they follow again
      await enqueue(get().db, [message(o.appid, 'blocker', 'template', 'order:5')], clock.now())
      await drainOutbox(o)
      const sent = (await rows(o.appid)).find((r) => r.openid === 'blocker')!
      await recordDelivery(get().db, {
        appid: o.appid,
        msgid: sent.wechat_msgid!,
        status: 'failed:user block',
        openid: 'blocker',
        now: clock.now(),
      })
      await enqueue(get().db, [message(o.appid, 'blocker', 'template', 'order:6')], clock.now())
      expect(await drainOutbox(o)).toMatchObject({ sent: 0, skipped: 1 })
      await get()
        .db.insertInto('members')
        .values({
          appid: o.appid,
          openid: 'blocker',
          subscribed: true,
          subscribed_at: new Date(clock.now().getTime() + 1000),
          first_seen_at: clock.now(),
        })
        .execute()
      await enqueue(get().db, [message(o.appid, 'blocker', 'template', 'order:7')], clock.now())
      expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
    } finally {
      await own.close()
    }
  })

  it('gives back the tokens it took and did not use', async () => {
    const rate = { perSecond: 1, burst: 200 }
    const o = account({ rate, batchSize: 200 })
    await enqueue(
      get().db,
      ['tok1', 'tok2', 'tok3', 'invalid_tok'].map((id) => message(o.appid, id, 'template', 't')),
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 3, skipped: 1 })
    const bucket = await get()
      .db.selectFrom('rate_buckets')
      .select('tokens')
      .where('appid', '=', o.appid)
      .executeTakeFirstOrThrow()
    // 4 calls to WeChat (the invalid openid is only known from its answer); 196 given back
    expect(bucket.tokens).toBe(196)
  })

  it('gives back the token of an item whose claim it lost before the send', async () => {
    const rate = { perSecond: 1, burst: 200 }
    const o = account({ rate, batchSize: 200, concurrency: 1 })
    await enqueue(
      get().db,
      ['lost_a', 'lost_b'].map((id) => message(o.appid, id, 'template', 'lost')),
      clock.now(),
    )
    // While the first item is being sent, another dispatcher takes the second over (as when this
    // claim's lease ran out): this drain finds it no longer holds it when it marks it.
    let takenOver = false
    const api: typeof o.api = {
      ...o.api,
      async call(req) {
        if (!takenOver && req.method === 'template.send') {
          takenOver = true
          const touser = (req.body as { touser: string }).touser
          await get()
            .db.updateTable('push_outbox')
            .set({ claim_token: 'another-dispatcher' })
            .where('appid', '=', o.appid)
            .where('openid', '!=', touser)
            .execute()
        }
        return o.api.call(req)
      },
    }
    expect(await drainOutbox({ ...o, api })).toMatchObject({ sent: 1, skipped: 0, failed: 0 })
    expect(takenOver).toBe(true)
    expect(sentTo(o.appid)).toHaveLength(1)
    expect((await rows(o.appid)).map((r) => [r.status, r.claim_token])).toEqual(
      expect.arrayContaining([
        ['sent', null],
        ['sending', 'another-dispatcher'],
      ]),
    )
    const bucket = await get()
      .db.selectFrom('rate_buckets')
      .select('tokens')
      .where('appid', '=', o.appid)
      .executeTakeFirstOrThrow()
    // 1 call to WeChat; the other 199 given back (the taken-over item's with them)
    expect(bucket.tokens).toBe(199)
  })

  it('gives back the token of an item it re-claimed from itself', async () => {
    const rate = { perSecond: 1, burst: 200 }
    const o = account({ rate, batchSize: 2, concurrency: 2 })
    const early = new Date(clock.now().getTime() - 60_000)
    await enqueue(
      get().db,
      [
        ...['self_a', 'self_b'].map((id) => message(o.appid, id, 'template', 'self')),
        message(o.appid, 'self_c', 'template', 'self', { notBefore: clock.now() }),
      ],
      early,
    )
    const attempts = async (openid: string) =>
      (
        await get()
          .db.selectFrom('push_outbox')
          .select('attempts')
          .where('appid', '=', o.appid)
          .where('openid', '=', openid)
          .executeTakeFirstOrThrow()
      ).attempts
    const until = async (done: () => Promise<boolean>) => {
      for (let i = 0; i < 500 && !(await done()); i++) await new Promise((r) => setTimeout(r, 10))
    }
    // The first claim takes a and b, each sent by a worker (the next claim takes c). While the
    // first of them is being sent its lease runs out (as when every renewal fails): the drain's
    // next claim takes it back, still in hand; the copy in hand is sent once, when it has.
    let leaseOver: Promise<unknown> | undefined
    let reclaimed = false
    const api: typeof o.api = {
      ...o.api,
      async call(req) {
        if (req.method !== 'template.send') return o.api.call(req)
        const touser = (req.body as { touser: string }).touser
        if (leaseOver === undefined) {
          leaseOver = get()
            .db.updateTable('push_outbox')
            .set({ next_attempt_at: early })
            .where('appid', '=', o.appid)
            .where('openid', '=', touser)
            .execute()
          await leaseOver
          await until(async () => (reclaimed = (await attempts(touser)) === 2))
        } else await leaseOver // the other worker goes on once it has (and claims again)
        return o.api.call(req)
      },
    }
    expect(await drainOutbox({ ...o, api })).toMatchObject({ sent: 3, skipped: 0, failed: 0 })
    expect(reclaimed).toBe(true)
    expect(sentTo(o.appid)).toHaveLength(3)
    expect((await rows(o.appid)).map((r) => [r.status, r.claim_token])).toEqual([
      ['sent', null],
      ['sent', null],
      ['sent', null],
    ])
    const bucket = await get()
      .db.selectFrom('rate_buckets')
      .select('tokens')
      .where('appid', '=', o.appid)
      .executeTakeFirstOrThrow()
    // 3 calls to WeChat (the clock stands still: no refill); every other token taken given back,
    // the re-claimed item's with them
    expect(bucket.tokens).toBe(197)
  })

  it('takes a rate token for the fallback after WeChat refuses the window, as for any call', async () => {
    // N tokens a window (the clock stands still between drains: no refill until it moves)
    const N = 4
    const rate = { perSecond: 1, burst: N }
    const o = account({ rate, batchSize: 200, concurrency: 2 })
    const openids = Array.from({ length: 2 * N }, (_, i) => `rate_fb${i}`)
    await wrote(get().db, o.appid, openids)
    const fallback = { kind: 'template' as const, payload: template }
    await enqueue(
      get().db,
      openids.map((openid) => message(o.appid, openid, 'custom', 'notice:rate', { fallback })),
      clock.now(),
    )
    // staff used every window from the MP console: WeChat refuses each customer-service message
    wx.fault('custom.send', ...openids.map(() => ({ errcode: 45047 })))
    const calls = () => wx.calls('custom.send') + wx.calls('template.send')
    const windows: number[] = []
    for (let i = 0; i < 5; i++) {
      const before = calls()
      await drainOutbox(o)
      windows.push(calls() - before)
      advance(N * 1000) // the next window: N more tokens
    }
    // every request to WeChat took a token: never more than N in a window
    expect(Math.max(...windows)).toBeLessThanOrEqual(N)
    // and every item went by its fallback, once
    const done = await rows(o.appid)
    expect(done.map((r) => r.status)).toEqual(openids.map(() => 'sent'))
    const fallbacks = sentTo(o.appid).filter((s) => s.method === 'template.send')
    expect(fallbacks.map((s) => s.touser).sort()).toEqual([...openids].sort())
  })

  it("counts the customer-service window's quota before WeChat refuses, and reroutes", async () => {
    const o = account({ concurrency: 1 })
    await wrote(get().db, o.appid, ['cs_quota', 'cs_fallback'])
    const calls = wx.calls('custom.send')
    await enqueue(
      get().db,
      Array.from({ length: 7 }, (_, i) => message(o.appid, 'cs_quota', 'custom', `notice:q${i}`)),
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 5, skipped: 2 })
    expect(wx.calls('custom.send') - calls).toBe(5) // WeChat never had to answer 45047
    const skipped = (await rows(o.appid)).filter((r) => r.status === 'skipped')
    expect(skipped.map((r) => r.errcode)).toEqual([45047, 45047])

    // a new message from the member opens a new window with a new quota
    await get()
      .db.updateTable('members')
      .set({ last_inbound_at: clock.now() })
      .where('appid', '=', o.appid)
      .where('openid', '=', 'cs_quota')
      .execute()
    wx.setUser('cs_quota', { windowOpen: true })
    await enqueue(get().db, [message(o.appid, 'cs_quota', 'custom', 'notice:q9')], clock.now())
    expect(await drainOutbox(o)).toMatchObject({ sent: 1 })

    // with a fallback, the sixth goes as a subscribe message instead
    await enqueue(
      get().db,
      Array.from({ length: 6 }, (_, i) =>
        message(o.appid, 'cs_fallback', 'custom', `notice:f${i}`, {
          fallback: {
            kind: 'subscribe',
            payload: { template_id: 'SUB_TPL', data: { thing1: { value: '积分到账' } } },
          },
        }),
      ),
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 6 })
    const methods = sentTo(o.appid)
      .filter((s) => s.touser === 'cs_fallback')
      .map((s) => s.method)
    expect(methods).toEqual([...Array(5).fill('custom.send'), 'subscribe.send'])
  })

  /** Receives an event push from `openid` now, as the webhook does (its claim and the member). */
  async function pushEvent(appid: string, openid: string, event: string, eventKey = '') {
    const members = databaseMemberStore(get().db, { timeZone: 'Asia/Shanghai' })
    const push = toInboundMessage(
      parseXml(
        `<xml><ToUserName>gh</ToUserName><FromUserName>${openid}</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>${event}</Event><EventKey>${eventKey}</EventKey></xml>`,
      ),
    )
    const key = { appid, dedupeKey: `e:${openid}:${event}:${clock.now().getTime()}` }
    const got = await members.receive({ ...key, msgType: 'event', event }, push, clock.now())
    expect(isDuplicate(got)).toBe(false)
    return key
  }
  const replyItem = (appid: string, openid: string, source: string) =>
    message(appid, openid, 'custom', source, { lane: LANE.reply })

  it("sends a follow's late reply in the follow's 1-minute window, 3 messages, replies only", async () => {
    const o = account({ concurrency: 1 })
    const db = get().db
    const inbound = databaseInboundStore(db)
    wx.setUser('ev_follow', { subscribe: true, windowOpen: true })
    // a new follower, who never wrote; the subscribe handler misses the reply deadline
    const key = await pushEvent(o.appid, 'ev_follow', 'subscribe')
    advance(5_000)
    expect(await inbound.defer(key, clock.now())).toBe(true)
    await inbound.recordFollowUp(
      key,
      JSON.stringify({ type: 'text', content: '欢迎' }),
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 1, skipped: 0 })
    expect(sentTo(o.appid).map((s) => s.body)).toEqual([
      expect.objectContaining({ touser: 'ev_follow', text: { content: '欢迎' } }),
    ])
    // two more replies fit the minute's 3, the fourth is over its quota; a notice may not use it
    await enqueue(
      db,
      [
        replyItem(o.appid, 'ev_follow', 'reply:ev2'),
        replyItem(o.appid, 'ev_follow', 'reply:ev3'),
        replyItem(o.appid, 'ev_follow', 'reply:ev4'),
        message(o.appid, 'ev_follow', 'custom', 'notice:ev', { lane: LANE.notice }),
      ],
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 2, skipped: 2 })
    const outcome = async () =>
      Object.fromEntries((await rows(o.appid)).map((r) => [r.source, [r.status, r.errcode]]))
    expect(await outcome()).toMatchObject({
      'reply:ev2': ['sent', null],
      'reply:ev3': ['sent', null],
      'reply:ev4': ['skipped', 45047],
      'notice:ev': ['skipped', 45015],
    })
    // a minute after the follow, the window is closed
    advance(55_000)
    await enqueue(db, [replyItem(o.appid, 'ev_follow', 'reply:ev5')], clock.now())
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, skipped: 1 })
    expect((await outcome())['reply:ev5']).toEqual(['skipped', 45015])
    expect(wx.calls('custom.send')).toBeGreaterThan(0)
    expect(sentTo(o.appid)).toHaveLength(3)
  })

  it("keeps a message's 48-hour window and its 5 when a menu click or a menu scan comes", async () => {
    const o = account({ concurrency: 1 })
    const db = get().db
    await wrote(db, o.appid, ['ev_wrote', 'ev_scan'], 3_600_000)
    // a click inside the open message window does not shrink it to the click's 3
    await pushEvent(o.appid, 'ev_wrote', 'CLICK', 'MENU_A')
    await enqueue(
      db,
      Array.from({ length: 5 }, (_, i) => replyItem(o.appid, 'ev_wrote', `reply:w${i}`)),
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 5, skipped: 0 })
    const window = await db
      .selectFrom('cs_window_sends')
      .selectAll()
      .where('appid', '=', o.appid)
      .where('openid', '=', 'ev_wrote')
      .executeTakeFirstOrThrow()
    expect(window.window_opened_at.getTime()).toBe(clock.now().getTime() - 3_600_000)
    expect(window).toMatchObject({ sent: 5, quota: 5 })
    // a menu scan (an untyped event) opens no 48-hour window: 49 hours on, nothing is open
    advance(49 * 3_600_000)
    await pushEvent(o.appid, 'ev_scan', 'scancode_push', 'SCAN_A')
    const [member] = await db
      .selectFrom('members')
      .select('last_inbound_at')
      .where('appid', '=', o.appid)
      .where('openid', '=', 'ev_scan')
      .execute()
    expect(member!.last_inbound_at!.getTime()).toBe(clock.now().getTime() - 50 * 3_600_000)
    advance(60_000)
    await enqueue(db, [replyItem(o.appid, 'ev_scan', 'reply:s1')], clock.now())
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, skipped: 1 })
  })

  it('withdraws campaign-lane items of a member who opted out after they were queued; notices go', async () => {
    const o = account()
    const db = get().db
    await wrote(db, o.appid, ['optout_late', 'optout_stays'])
    const [campaign] = await db
      .insertInto('campaigns')
      .values({
        appid: o.appid,
        name: 'evening',
        status: 'scheduled',
        audience: '{}',
        variants: JSON.stringify([{ key: 'A', weight: 1, template }]),
        run_at: new Date(clock.now().getTime() - 60_000),
        created_at: clock.now(),
        updated_at: clock.now(),
      })
      .returning('id')
      .execute()
    const settings = {
      timeZone: 'Asia/Shanghai',
      capHours: 24,
      capSlackMinutes: 30,
      quietHours: null,
      publicBaseUrl: 'https://quanzi.example',
    }
    const t = translator('zh-CN')
    const run = await dispatchCampaigns(db, { slot: clock.now(), now: clock.now(), settings, t })
    expect(run.enqueued).toBe(2)
    // an activity invitation (campaign lane) and an order notice (notice lane) for the same member
    await enqueue(
      db,
      [
        message(o.appid, 'optout_late', 'custom', 'activity:1:invite', { lane: LANE.campaign }),
        message(o.appid, 'optout_late', 'template', 'order:1:paid', { lane: LANE.notice }),
      ],
      clock.now(),
    )
    // 退订 while the campaign drains (handlers/preferences.ts)
    await db
      .updateTable('members')
      .set({ marketing_opt_out: true })
      .where('appid', '=', o.appid)
      .where('openid', '=', 'optout_late')
      .execute()
    const summary = await drainOutbox(o)
    expect(summary).toMatchObject({ sent: 2, cancelled: 2, skipped: 0, failed: 0 })
    const got = sentTo(o.appid).map((s) => `${s.touser} ${s.method}`)
    expect(got.sort()).toEqual(['optout_late template.send', 'optout_stays template.send'])
    const late = (await rows(o.appid)).filter((r) => r.openid === 'optout_late')
    expect(late.map((r) => [r.source.split(':')[0], r.status, r.errmsg])).toEqual([
      ['campaign', 'cancelled', OPTED_OUT],
      ['activity', 'cancelled', OPTED_OUT],
      ['order', 'sent', null],
    ])
    // the campaign report counts it neither sent nor failed
    const report = await campaignReport(db, campaign!.id)
    expect(report.variants[0]).toMatchObject({ enqueued: 2, sent: 1, failed: 0 })
  })

  for (const errcode of [45047, 45015] as const) {
    it(`sends the fallback when WeChat refuses the window itself (${errcode}), and reroutes the member`, async () => {
      const o = account({ concurrency: 1 })
      const db = get().db
      await wrote(db, o.appid, ['wx_closed', 'wx_closed_bare'])
      if (errcode === 45047)
        // another tool (or staff in the MP console) used the window's quota: our count says 0
        for (const openid of ['wx_closed', 'wx_closed_bare'])
          for (let i = 0; i < 5; i++)
            await sendCustomMessage(o.api, openid, {
              msgtype: 'text',
              text: { content: '人工回复' },
            })
      else
        for (const openid of ['wx_closed', 'wx_closed_bare'])
          wx.setUser(openid, { subscribe: true, windowOpen: false })
      const fallback = { kind: 'template' as const, payload: template }
      await enqueue(
        db,
        [
          message(o.appid, 'wx_closed', 'custom', 'notice:1', { fallback }),
          message(o.appid, 'wx_closed', 'custom', 'notice:2', { fallback }),
          message(o.appid, 'wx_closed_bare', 'custom', 'notice:3'),
        ],
        clock.now(),
      )
      const before = wx.calls('custom.send')
      const sentBefore = sentTo(o.appid).length
      expect(await drainOutbox(o)).toMatchObject({ sent: 2, skipped: 1 })
      // WeChat refused once per member; the member's second item went straight to its fallback
      expect(wx.calls('custom.send') - before).toBe(2)
      const sent = sentTo(o.appid).slice(sentBefore)
      expect(sent.map((s) => `${s.touser} ${s.method}`)).toEqual([
        'wx_closed template.send',
        'wx_closed template.send',
      ])
      const byId = await rows(o.appid)
      expect(byId.map((r) => [r.source, r.status])).toEqual([
        ['notice:1', 'sent'],
        ['notice:2', 'sent'],
        ['notice:3', 'skipped'],
      ])
      expect(byId[2]!.errcode).toBe(errcode) // no fallback: skipped with WeChat's errcode
      expect(byId.every((r) => r.attempt_started_at === null)).toBe(true)
      const closed = await db
        .selectFrom('member_reachability')
        .select(['openid', 'errcode'])
        .where('appid', '=', o.appid)
        .where('channel', '=', 'custom')
        .orderBy('openid')
        .execute()
      expect(closed).toEqual([
        { openid: 'wx_closed', errcode },
        { openid: 'wx_closed_bare', errcode },
      ])
      // a later item reroutes without asking WeChat
      await enqueue(
        db,
        [message(o.appid, 'wx_closed', 'custom', 'notice:4', { fallback })],
        clock.now(),
      )
      expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
      expect(wx.calls('custom.send') - before).toBe(2)
    })
  }

  it('never sends a fallback twice: one whose answer was lost after WeChat refused the window is unknown', async () => {
    const o = account({ timeoutMs: 200 })
    await wrote(get().db, o.appid, ['fb_lost'])
    await enqueue(
      get().db,
      [
        message(o.appid, 'fb_lost', 'custom', 'notice:1', {
          fallback: {
            kind: 'subscribe',
            payload: { template_id: 'SUB_TPL', data: { thing1: { value: '积分到账' } } },
          },
        }),
      ],
      clock.now(),
    )
    wx.fault('custom.send', { errcode: 45047 })
    wx.fault(
      'subscribe.send',
      ...Array.from({ length: 4 }, () => ({ dropResponse: true as const })),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, unknown: 1, retried: 0 })
    expect(sentTo(o.appid).map((s) => s.method)).toEqual(['subscribe.send'])
    expect(await rows(o.appid)).toMatchObject([{ status: 'unknown' }])
    advance(3600_000)
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, unknown: 0 })
    expect(sentTo(o.appid)).toHaveLength(1)
  })

  it('prunes finished replies and notices, receipts and closed windows; keeps campaigns and work', async () => {
    const appid = `wxprune${dbName}0000000`.slice(0, 18)
    const old = new Date(clock.now().getTime() - 40 * 86_400_000)
    const recent = new Date(clock.now().getTime() - 86_400_000)
    const row = (openid: string, status: string, lane: 0 | 1 | 2, created: Date) => ({
      appid,
      source: `prune:${openid}`,
      openid,
      kind: 'template' as const,
      payload: '{}',
      status: status as 'sent',
      lane,
      next_attempt_at: created,
      created_at: created,
    })
    await get()
      .db.insertInto('push_outbox')
      .values([
        row('old_sent', 'sent', 1, old),
        row('old_reply', 'unknown', 0, old),
        row('old_pending', 'pending', 1, old),
        row('old_campaign', 'sent', 2, old),
        row('recent_sent', 'sent', 1, recent),
      ])
      .execute()
    await get()
      .db.insertInto('push_receipts')
      .values([
        { appid, msgid: 'r_old', status: 'success', received_at: old },
        { appid, msgid: 'r_new', status: 'success', received_at: recent },
      ])
      .execute()
    await get()
      .db.insertInto('cs_window_sends')
      .values([
        {
          appid,
          openid: 'w_closed',
          window_opened_at: new Date(clock.now().getTime() - 49 * 3600_000),
          sent: 5,
        },
        { appid, openid: 'w_open', window_opened_at: recent, sent: 1 },
      ])
      .execute()
    const pruned = await pruneOutbox(get().db, {
      outboxDays: 30,
      receiptDays: 30,
      now: clock.now(),
      batch: 1,
    })
    expect(pruned.outbox).toBeGreaterThanOrEqual(2)
    const left = (await rows(appid)).map((r) => r.openid).sort()
    expect(left).toEqual(['old_campaign', 'old_pending', 'recent_sent'])
    const receipts = await get()
      .db.selectFrom('push_receipts')
      .select('msgid')
      .where('appid', '=', appid)
      .execute()
    expect(receipts.map((r) => r.msgid)).toEqual(['r_new'])
    const windows = await get()
      .db.selectFrom('cs_window_sends')
      .select('openid')
      .where('appid', '=', appid)
      .execute()
    expect(windows.map((r) => r.openid)).toEqual(['w_open'])
  })

  it.runIf(dbName === 'postgres')(
    'never sends a customer-service message twice when its dispatcher is SIGKILLed mid-batch',
    async () => {
      const o = account()
      const openids = Array.from({ length: 60 }, (_, i) => `cs_crash_${i}`)
      const saved = clock.time
      clock.time = new Date() // the child dispatches by the real clock
      await wrote(get().db, o.appid, openids)
      clock.time = saved
      await enqueue(
        get().db,
        openids.map((id) => message(o.appid, id, 'custom', 'notice:crash')),
        new Date(),
      )
      const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(get().db))
        .rows[0]!.s
      const args = [
        '--import',
        'tsx',
        'test/fixtures/outbox-child.ts',
        process.env.TEST_DATABASE_URL!,
        schema,
        wx.url,
        o.appid,
        SECRET,
      ]
      wx.setLatency(20)
      try {
        const first = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (sentTo(o.appid).length >= 15) {
              clearInterval(timer)
              resolve()
            }
          }, 2)
        })
        first.kill('SIGKILL')
        await new Promise((r) => first.once('exit', r))
        const settledBeforeRestart = (await rows(o.appid)).filter((r) => r.status === 'sent').length
        expect(settledBeforeRestart).toBeGreaterThan(0) // results were stored per item, not per batch
        const second = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
        expect(await new Promise((r) => second.once('exit', r))).toBe(0)
      } finally {
        wx.setLatency(0)
      }
      const sends = sentTo(o.appid).map((s) => s.touser)
      expect(new Set(sends).size).toBe(sends.length) // nobody got it twice
      const stored = await rows(o.appid)
      const unknown = stored.filter((r) => r.status === 'unknown')
      expect(stored.filter((r) => r.status === 'sent').length + unknown.length).toBe(60)
      expect(unknown.length).toBeLessThanOrEqual(4) // at most the sends in flight at the kill
      // every row stored as sent was sent exactly once
      for (const r of stored.filter((r) => r.status === 'sent'))
        expect(sends.filter((t) => t === r.openid)).toHaveLength(1)
    },
    60_000,
  )
})
