/**
 * The Worker in workerd: `src/worker.ts` built and served by wrangler's `unstable_startWorker`
 * (Miniflare, the workerd binary from npm) on loopback, talking to PostgreSQL on loopback through
 * the Hyperdrive binding's local connection string, to the sandbox WeChat API and the sandbox
 * WeChat Pay (real HTTP servers in this Node process, also on loopback). Nothing reaches the
 * internet (Request.cf fetching and telemetry are off).
 *
 * PostgreSQL only: a Worker cannot open PGlite. Without TEST_DATABASE_URL the suite is skipped and
 * says so; CI sets it, so it runs there in `npm test`.
 */
import { relative, resolve } from 'node:path'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assetUrl, findAsset } from '../../src/console/assets.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { postgresDatabase } from '../../src/db/postgres.js'
import type { Database } from '../../src/db/schema.js'
import type { SandboxPay } from '../../src/sandbox/pay-server.js'
import { createPusher, nextMsgId, type Pusher } from '../../src/sandbox/pusher.js'
import { startSandboxShop } from '../../src/sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../../src/sandbox/wechat-api-server.js'
import { SAFE_ACCOUNT } from '../server.js'
import { dueTemplateCampaign, workerdDatabase, workerEnvironment } from './workerd-kit.js'

const url = process.env.TEST_DATABASE_URL
if (!url)
  console.warn(
    'test/workerd: skipped — the Worker runs on PostgreSQL only; set TEST_DATABASE_URL to run it',
  )

const SECRET = 'workerd-secret'

describe.skipIf(!url)('the Worker in workerd (wrangler unstable_startWorker)', () => {
  let db: Kysely<Database>
  let dropDatabase: () => Promise<void>
  let wx: SandboxApi
  let pay: SandboxPay
  let worker: Awaited<ReturnType<typeof import('wrangler').unstable_startWorker>>
  let base: string
  let push: Pusher
  let mpAppid: string

  beforeAll(async () => {
    const database = await workerdDatabase(url!)
    dropDatabase = database.drop
    db = postgresDatabase(database.url, { max: 4 })
    await migrateToLatest(db)
    const shop = await startSandboxShop({ notifyUrl: 'http://127.0.0.1/pay/notify' })
    wx = await startSandboxApi({
      accounts: { [SAFE_ACCOUNT.appid]: SECRET, [shop.config.mpAppid]: shop.config.mpSecret },
    })
    pay = shop.pay
    mpAppid = shop.config.mpAppid
    const { unstable_startWorker } = await import('wrangler')
    worker = await unstable_startWorker(
      workerEnvironment({
        databaseUrl: database.url,
        vars: {
          WECHAT_SECRET: SECRET,
          WECHAT_API_BASE: wx.url,
          WECHAT_TOKEN_MODE: 'stable',
          ADMIN_TOKEN: 'workerd-operator-token-0123',
          QUIET_HOURS: 'off',
          CAMPAIGN_CAP_HOURS: '0',
          // A scheduled invocation's jobs get 1 ms: every run does one chunk and pauses if more
          // is left (the chunked-jobs test below); segment chunks of 100 members.
          JOB_BUDGET_MS: '1',
          JOB_CHUNK_MEMBERS: '100',
          LOG_LEVEL: 'warn',
          MP_APPID: shop.config.mpAppid,
          MP_SECRET: shop.config.mpSecret,
          MP_SESSION_SECRET: shop.config.sessionSecret,
          PAY_NOTIFY_URL: 'https://quanzi.example/pay/notify',
          PAY_MCHID: shop.config.pay.mchid,
          PAY_CERT_SERIAL: shop.config.pay.certSerial,
          PAY_PRIVATE_KEY: shop.config.pay.privateKeyPem,
          PAY_API_V3_KEY: shop.config.pay.apiV3Key,
          PAY_VERIFY_KEYS: JSON.stringify(shop.config.pay.verifyKeys),
          PAY_API_BASE: shop.config.pay.apiBase,
        },
      }),
    )
    await Promise.race([
      worker.ready,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('workerd did not start in 60 s')), 60_000).unref(),
      ),
    ])
    base = (await worker.url).href.replace(/\/$/, '')
    push = createPusher({ url: `${base}/wechat/${SAFE_ACCOUNT.appid}`, account: SAFE_ACCOUNT })
  }, 90_000)

  afterAll(async () => {
    await worker?.dispose()
    await wx?.close()
    await pay?.close()
    await db?.destroy()
    await dropDatabase?.()
  }, 30_000)

  it('serves one build for the whole suite: wrangler watches no folder of the sources', () => {
    // A rebuild would reload the Worker under the tests that follow (test/workerd/workerd-kit.ts).
    const root = new URL('../..', import.meta.url).pathname
    const watched = [worker.config.build.custom?.watch ?? []].flat().map((p) => resolve(root, p))
    const sources = ['src/worker.ts', 'handlers/index.ts', 'jobs/index.ts'].map((f) => root + f)
    expect(watched.length).toBeGreaterThan(0)
    expect(watched.filter((p) => sources.some((s) => !relative(p, s).startsWith('..')))).toEqual([])
  })

  it("serves the console's assets precompressed, as they are, each time", async () => {
    // fetch decodes what it gets: an asset compressed twice (the runtime compressing the
    // precompressed bytes again) would not read back as the asset. Each coding twice: the bytes
    // kept for it are not used up by the first response. (Pages go out as they are: workerd
    // compresses nothing on its own; Cloudflare's edge does.)
    const path = assetUrl('echarts', 'js')
    const asset = findAsset(path.split('/').at(-1)!)!
    for (const coding of ['br', 'br', 'gzip', 'gzip']) {
      const res = await fetch(`${base}${path}`, { headers: { 'accept-encoding': coding } })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-encoding')).toBe(coding)
      // (compared whole, reported short: the asset is 600 KB)
      expect((await res.text()) === asset.body, `${coding} reads back as the asset`).toBe(true)
    }
    const login = await fetch(`${base}/console/login`, { headers: { 'accept-encoding': 'gzip' } })
    expect(login.status).toBe(200)
    expect(await login.text()).toContain('name="password"')
  })

  it('answers 50 sequential safe-mode pushes, each with a sealed reply', async () => {
    for (let i = 0; i < 50; i++) {
      const r = await push.text(`o_seq_${i % 5}`, '帮助')
      expect(r.status, `push ${i}: ${r.body.slice(0, 200)}`).toBe(200)
      expect(r.reply?.MsgType).toBe('text')
    }
  }, 60_000)

  it('answers 20 concurrent safe-mode pushes', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => push.text(`o_conc_${i}`, '帮助')),
    )
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200))
    expect(results.every((r) => r.reply?.MsgType === 'text')).toBe(true)
  }, 60_000)

  it('answers a retried push with the same reply and handles it once', async () => {
    const msgId = nextMsgId()
    const first = await push.text('o_retry', '签到', msgId)
    const again = await push.text('o_retry', '签到', msgId)
    expect(first.status).toBe(200)
    expect(again.status).toBe(200)
    expect(again.reply?.Content).toBe(first.reply?.Content)
    const checkins = await db
      .selectFrom('checkins')
      .innerJoin('members', 'members.id', 'checkins.member_id')
      .where('members.openid', '=', 'o_retry')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow()
    expect(checkins.n).toBe(1)
  }, 30_000)

  it('checks a member in once a day and credits the points once', async () => {
    const r = await push.text('o_checkin', '签到')
    expect(r.status).toBe(200)
    expect(String(r.reply?.Content)).toMatch(/签到/)
    const member = await db
      .selectFrom('members')
      .select(['id'])
      .where('openid', '=', 'o_checkin')
      .executeTakeFirstOrThrow()
    const ledger = () =>
      db
        .selectFrom('points_ledger')
        .select(sql<number>`coalesce(sum(delta), 0)::int`.as('points'))
        .where('member_id', '=', member.id)
        .executeTakeFirstOrThrow()
    const credited = (await ledger()).points
    expect(credited).toBeGreaterThan(0)
    // Again the same day (a new message, not a retry): answered, nothing credited.
    expect((await push.text('o_checkin', '签到')).status).toBe(200)
    expect((await ledger()).points).toBe(credited)
    const days = await db
      .selectFrom('checkins')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('member_id', '=', member.id)
      .executeTakeFirstOrThrow()
    expect(days.n).toBe(1)
  }, 30_000)

  it('runs a scheduled tick that enqueues a due campaign and delivers it to the WeChat API', async () => {
    const openids = ['o_camp_1', 'o_camp_2', 'o_camp_3']
    await db
      .insertInto('members')
      .values(
        openids.map((openid) => ({
          appid: SAFE_ACCOUNT.appid,
          openid,
          subscribed: true,
          first_seen_at: new Date(),
        })),
      )
      .execute()
    // Everyone subscribed: these three and the members the pushes above made.
    const campaignId = await dueTemplateCampaign(db, {
      name: 'workerd',
      template: { template_id: 'TPL_WORKERD', data: { thing1: { value: '欢迎回来' } } },
    })
    const before = wx.sent.length
    const res = await fetch(
      `${base}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('* * * * *')}&time=${Date.now()}`,
    )
    expect(res.status).toBe(200)
    const delivered = async () =>
      wx.sent.slice(before).filter((s) => s.body.template_id === 'TPL_WORKERD')
    const members = await db
      .selectFrom('members')
      .select('openid')
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .where('subscribed', '=', true)
      .execute()
    expect(members.length).toBeGreaterThan(openids.length)
    await expect
      .poll(async () => (await delivered()).length, { timeout: 30_000 })
      .toBe(members.length)
    expect((await delivered()).map((s) => s.touser).sort()).toEqual(
      members.map((m) => m.openid).sort(),
    )
    const outbox = await db
      .selectFrom('push_outbox')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('source', 'like', `campaign:${campaignId}%`)
      .where('status', '!=', 'sent')
      .executeTakeFirstOrThrow()
    expect(outbox.n).toBe(0)
  }, 60_000)

  it('pauses a long job at the end of its invocation budget and completes it in the next invocations', async () => {
    await sql`insert into members (appid, openid, subscribed, first_seen_at, last_active_at)
      select ${SAFE_ACCOUNT.appid}, 'o_chunk_' || i, true, now() - make_interval(days => i % 120),
        now() - make_interval(days => i % 100)
      from generate_series(1, 150) as i`.execute(db)
    // 03:30 in Shanghai two days ago: the segment recompute is due; no job ran before it.
    const slot = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000)
    slot.setUTCHours(19, 30)
    const scheduled = async (at: Date) => {
      const res = await fetch(
        `${base}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('* * * * *')}&time=${at.getTime()}`,
      )
      expect(res.status).toBe(200)
    }
    const run = () =>
      db
        .selectFrom('job_runs')
        .select(['status', 'cursor'])
        .where('job', '=', 'recompute-segments')
        .where('slot', '=', slot)
        .executeTakeFirst()
    const uncomputed = async () =>
      (
        await db
          .selectFrom('members')
          .select(sql<number>`count(*)::int`.as('n'))
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('member_segments')
                  .select('member_id')
                  .whereRef('member_segments.member_id', '=', 'members.id'),
              ),
            ),
          )
          .executeTakeFirstOrThrow()
      ).n
    await scheduled(slot)
    await expect.poll(async () => (await run())?.status, { timeout: 20_000 }).toBe('paused')
    // One chunk of 100 members done within the invocation, the rest left for the next one.
    const cursor = JSON.parse((await run())!.cursor!) as { after: number; changed: number }
    expect(cursor.changed).toBeGreaterThan(0)
    expect(await uncomputed()).toBeGreaterThan(0)
    let invocations = 1
    while ((await run())?.status === 'paused' && invocations < 10)
      await scheduled(new Date(slot.getTime() + invocations++ * 60_000))
    await expect.poll(async () => (await run())?.status, { timeout: 20_000 }).toBe('succeeded')
    expect(invocations).toBeGreaterThanOrEqual(2)
    expect(await uncomputed()).toBe(0)
  }, 90_000)

  it('applies a WeChat Pay notification once, however often it is delivered', async () => {
    const api = async (path: string, body: unknown, token?: string) => {
      const res = await fetch(`${base}/api/mp${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      })
      // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
      return { status: res.status, json: (await res.json()) as Record<string, any> }
    }
    const login = await api('/login', { code: wx.loginCode(mpAppid, 'o_mp_workerd') })
    expect(login.status, JSON.stringify(login.json)).toBe(200)
    const order = await api('/orders', { sku: 'vip-90' }, login.json.token)
    expect(order.status, JSON.stringify(order.json)).toBe(201)
    const no = order.json.order.outTradeNo as string
    const { notification } = await pay.pay(no, { deliver: false })
    const deliver = () =>
      fetch(`${base}/pay/notify`, {
        method: 'POST',
        headers: notification.headers,
        body: notification.body,
      })
    const answers = await Promise.all([deliver(), deliver(), deliver()])
    expect(answers.map((a) => a.status)).toEqual([204, 204, 204])
    expect((await deliver()).status).toBe(204)
    const row = await db
      .selectFrom('orders')
      .innerJoin('members', 'members.id', 'orders.member_id')
      .select(['orders.status', 'members.purchase_count'])
      .where('orders.out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    // Four deliveries, three of them at once: paid, and the purchase counted once.
    expect(row).toEqual({ status: 'paid', purchase_count: 1 })
  }, 60_000)
})
