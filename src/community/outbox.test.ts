import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { type Clock, systemClock } from '../clock.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { parseXml } from '../wechat/codec.js'
import { toInboundMessage } from '../wechat/message.js'
import { nextLocalMidnight } from './community-time.js'
import { databaseMemberStore } from './members.js'
import { type DispatcherOptions, drainOutbox, enqueue, recordDelivery } from './outbox.js'
import { databaseTokenStore } from './token-store.js'

const SECRET = 'outbox-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

const template = { template_id: 'TPL_OUTBOX', data: { keyword1: { value: '活动提醒' } } }

forEachDatabase('push outbox', (get, dbName) => {
  let n = 0
  const clock = {
    time: new Date('2026-11-24T10:00:00Z'),
    now() {
      return this.time
    },
  } satisfies Clock & { time: Date }
  function account(extra: Partial<DispatcherOptions> = {}) {
    const appid = `wx${dbName === 'pglite' ? 'a' : 'b'}${String(++n).padStart(15, '0')}`
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
  const items = (
    appid: string,
    openids: string[],
    kind: 'template' | 'custom' = 'template',
    source = 'campaign:1',
  ) =>
    openids.map((openid) => ({
      appid,
      source,
      openid,
      kind,
      payload: kind === 'template' ? template : { msgtype: 'text', text: { content: 'hi' } },
    }))

  it('enqueues once per (source, member) and sends with a client_msg_id derived from the item', async () => {
    const o = account()
    expect(await enqueue(get().db, items(o.appid, ['o1', 'o2']), clock.now())).toBe(2)
    expect(await enqueue(get().db, items(o.appid, ['o2', 'o3']), clock.now())).toBe(1)
    expect(await drainOutbox(o)).toMatchObject({ sent: 3, skipped: 0, failed: 0 })
    const stored = await rows(o.appid)
    expect(stored.map((r) => r.status)).toEqual(['sent', 'sent', 'sent'])
    const sent = sentTo(o.appid)
    const byTouser = new Map(sent.map((x) => [x.touser, x]))
    for (const row of stored) {
      expect(byTouser.get(row.openid)!.body.client_msg_id).toBe(`qz${row.id}`)
      expect(row.wechat_msgid).toBe(String(byTouser.get(row.openid)!.msgid))
    }
    // and the delivery receipt lands on the row
    expect(
      await recordDelivery(get().db, {
        appid: o.appid,
        msgid: stored[0]!.wechat_msgid!,
        status: 'failed:user block',
        now: clock.now(),
      }),
    ).toBe(true)
    expect((await rows(o.appid))[0]).toMatchObject({ delivery: 'failed:user block' })
    expect(await drainOutbox(o)).toMatchObject({ sent: 0 })
  })

  it('lets concurrent dispatchers share a queue without sending anything twice', async () => {
    const o = account({ batchSize: 20, concurrency: 4 })
    const openids = Array.from({ length: 150 }, (_, i) => `o_conc_${i}`)
    await enqueue(get().db, items(o.appid, openids), clock.now())
    const second = dbName === 'postgres' ? { ...o, db: get().open() } : o
    const [a, b, c] = await Promise.all([drainOutbox(o), drainOutbox(second), drainOutbox(o)])
    expect(a.sent + b.sent + c.sent).toBe(150)
    const sent = sentTo(o.appid)
    expect(sent.length).toBe(150)
    expect(new Set(sent.map((s) => s.touser)).size).toBe(150)
  })

  it('skips unreachable members, records why, and does not ask WeChat again', async () => {
    const o = account()
    wx.setUser('o_left', { subscribe: false })
    const members = databaseMemberStore(get().db, { timeZone: 'Asia/Shanghai' })
    const claim = (appid: string, openid: string) => ({
      appid,
      dedupeKey: `${openid}:1`,
      msgType: 'text',
      event: null,
    })
    const text = (openid: string) =>
      toInboundMessage(
        parseXml(
          `<xml><ToUserName>gh</ToUserName><FromUserName>${openid}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>`,
        ),
      )
    await members.receive(claim(o.appid, 'o_left'), text('o_left'), clock.now())
    await members.receive(
      claim(o.appid, 'o_window'),
      text('o_window'),
      new Date(clock.now().getTime() - 47 * 3600_000),
    )
    await members.receive(
      claim(o.appid, 'o_stale'),
      text('o_stale'),
      new Date(clock.now().getTime() - 49 * 3600_000),
    )
    await enqueue(
      get().db,
      [
        ...items(o.appid, ['o_left', 'invalid_x']),
        ...items(o.appid, ['o_window', 'o_stale', 'o_never'], 'custom'),
      ],
      clock.now(),
    )
    const before = wx.calls('template.send') + wx.calls('custom.send')
    expect(await drainOutbox(o)).toMatchObject({ sent: 1, skipped: 4 })
    const byOpenid = Object.fromEntries((await rows(o.appid)).map((r) => [r.openid, r]))
    expect(byOpenid.o_left).toMatchObject({ status: 'skipped', errcode: 43004 })
    expect(byOpenid.invalid_x).toMatchObject({ status: 'skipped', errcode: 40003 })
    expect(byOpenid.o_window).toMatchObject({ status: 'sent' })
    expect(byOpenid.o_stale).toMatchObject({ status: 'skipped', errcode: 45015 })
    expect(byOpenid.o_never).toMatchObject({ status: 'skipped', errcode: 45015 })
    // only o_left and invalid_x (template) and o_window (custom) reached the API
    expect(wx.calls('template.send') + wx.calls('custom.send') - before).toBe(3)
    const left = await get()
      .db.selectFrom('members')
      .select('subscribed')
      .where('appid', '=', o.appid)
      .where('openid', '=', 'o_left')
      .executeTakeFirstOrThrow()
    expect(left.subscribed).toBe(false)
    // the next push to them is skipped without a call
    await enqueue(
      get().db,
      items(o.appid, ['o_left', 'invalid_x'], 'template', 'campaign:2'),
      clock.now(),
    )
    const again = wx.calls('template.send')
    expect(await drainOutbox(o)).toMatchObject({ skipped: 2 })
    expect(wx.calls('template.send')).toBe(again)
  })

  it('pauses the account on 45009 until the next community day, then resumes by itself', async () => {
    const o = account({ batchSize: 10, concurrency: 1 })
    await enqueue(get().db, items(o.appid, ['q1', 'q2', 'q3']), clock.now())
    wx.fault('template.send', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, paused: true })
    let stored = await rows(o.appid)
    expect(stored.map((r) => r.status)).toEqual(['pending', 'pending', 'pending'])
    expect(stored.map((r) => r.attempts)).toEqual([0, 0, 0])
    const midnight = nextLocalMidnight(clock.now(), 'Asia/Shanghai')
    expect(midnight.toISOString()).toBe('2026-11-24T16:00:00.000Z')
    expect(await drainOutbox(o)).toMatchObject({ sent: 0 })
    const saved = clock.time
    clock.time = new Date(midnight.getTime() + 1000)
    expect(await drainOutbox(o)).toMatchObject({ sent: 3, paused: false })
    clock.time = saved
    stored = await rows(o.appid)
    expect(stored.map((r) => r.status)).toEqual(['sent', 'sent', 'sent'])
  })

  it('retries transient failures later with backoff and gives up after max attempts', async () => {
    const o = account({ maxAttempts: 2 })
    await enqueue(get().db, items(o.appid, ['r1']), clock.now())
    wx.fault('template.send', { status: 503 }, { status: 503 }, { status: 503 }, { status: 503 })
    expect(await drainOutbox(o)).toMatchObject({ retried: 1 })
    let [row] = await rows(o.appid)
    expect(row).toMatchObject({ status: 'pending', attempts: 1 })
    expect(row!.next_attempt_at.getTime() - clock.now().getTime()).toBe(30_000)
    const saved = clock.time
    clock.time = new Date(saved.getTime() + 31_000)
    wx.fault('template.send', { status: 503 }, { status: 503 }, { status: 503 }, { status: 503 })
    expect(await drainOutbox(o)).toMatchObject({ failed: 1 })
    clock.time = saved
    ;[row] = await rows(o.appid)
    expect(row).toMatchObject({ status: 'failed', attempts: 2 })
    expect(row!.errmsg).toMatch(/HTTP 503/)
  })

  it('fails an invalid message without calling WeChat and keeps going', async () => {
    const o = account()
    await enqueue(
      get().db,
      [
        {
          appid: o.appid,
          source: 's',
          openid: 'v1',
          kind: 'template',
          payload: { template_id: 'T', data: { first: { value: 'x' } } },
        },
        ...items(o.appid, ['v2'], 'template', 's'),
      ],
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ failed: 1, sent: 1 })
    expect((await rows(o.appid))[0]!.errmsg).toMatch(/data\.first/)
  })

  it('throttles with the shared token bucket', async () => {
    const o = account({ rate: { perSecond: 10, burst: 5 }, batchSize: 50 })
    await enqueue(
      get().db,
      items(
        o.appid,
        Array.from({ length: 12 }, (_, i) => `t${i}`),
      ),
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 5 })
    const saved = clock.time
    clock.time = new Date(saved.getTime() + 500) // +5 tokens
    expect(await drainOutbox(o)).toMatchObject({ sent: 5 })
    clock.time = saved
  })

  it.runIf(dbName === 'postgres')(
    'sends exactly once when the dispatching process is killed mid-batch and restarted',
    async () => {
      const o = account()
      const openids = Array.from({ length: 120 }, (_, i) => `o_crash_${i}`)
      await enqueue(get().db, items(o.appid, openids), new Date())
      const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(get().db))
        .rows[0]!.s
      // node itself, not npx: SIGKILL must hit the dispatcher, not a wrapper around it
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
      wx.setLatency(15)
      try {
        const first = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (sentTo(o.appid).length >= 30) {
              clearInterval(timer)
              resolve()
            }
          }, 5)
        })
        first.kill('SIGKILL')
        await new Promise((r) => first.once('exit', r))
        const unsettled = await sql<{
          n: number
        }>`select count(*)::int as n from push_outbox where appid = ${o.appid} and status = 'sending'`.execute(
          get().db,
        )
        expect(unsettled.rows[0]!.n).toBeGreaterThan(0) // it really died mid-batch
        const second = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
        const code = await new Promise((r) => second.once('exit', r))
        expect(code).toBe(0)
      } finally {
        wx.setLatency(0)
      }
      const stored = await rows(o.appid)
      expect(stored.every((r) => r.status === 'sent' && r.wechat_msgid)).toBe(true)
      const sent = sentTo(o.appid)
      expect(sent.length).toBe(120)
      expect(new Set(sent.map((s) => s.touser)).size).toBe(120)
    },
    60_000,
  )
})
