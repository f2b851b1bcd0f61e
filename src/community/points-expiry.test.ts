import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { findJob } from '../../jobs/index.js'
import { runScheduled } from '../../jobs/runner.js'
import * as m0043 from '../../migrations/0043_points_expiry.js'
import * as m0057 from '../../migrations/0057_cheaper_checkin.js'
import * as m0082 from '../../migrations/0082_points_taken_back_unearned.js'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { testConfig } from '../../test/server.js'
import { translator } from '../bot/i18n.js'
import { chunkBudget } from '../budget.js'
import { silentLogger } from '../logger.js'
import { nodeMetrics } from '../node-metrics.js'
import { cachedOpsStatus } from './ops-status.js'
import {
  announceExpiringPoints,
  expireLots,
  expiringPoints,
  type PointsExpirySettings,
  parsePointsExpiry,
  runPointsExpiry,
  stampLots,
} from './points-expiry.js'
import { applyDelta, withMemberLocked } from './points-ledger.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxexpiry000000000001'
const t = translator('zh-CN')
const campaigns = { timeZone: TZ, quietHours: { from: 22 * 60, to: 8 * 60 } }
const days = (n: number, noticeDays = 7): PointsExpirySettings => ({
  policy: { mode: 'days', days: n },
  noticeDays,
})

it('reads POINTS_EXPIRY', () => {
  expect(parsePointsExpiry('off')).toEqual({ mode: 'off' })
  expect(parsePointsExpiry('year_end')).toEqual({ mode: 'year_end' })
  expect(parsePointsExpiry('365')).toEqual({ mode: 'days', days: 365 })
  for (const bad of ['0', '3651', '-1', '1.5', 'year', ''])
    expect(parsePointsExpiry(bad)).toBe(undefined)
})

forEachDatabase('points expiry', (get, dbName) => {
  let n = 0
  async function member(subscribed = true) {
    const row = await get()
      .db.insertInto('members')
      .values({
        appid: APPID,
        openid: `o_exp_${++n}`,
        subscribed,
        first_seen_at: new Date('2026-01-01T00:00:00Z'),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    return row.id
  }
  const change = (
    id: number,
    delta: number,
    now: Date,
    rule = delta > 0 ? 'grant' : 'redeem',
    db = get().db,
  ) =>
    withMemberLocked(db, id, (trx, row) =>
      applyDelta(
        trx,
        row,
        {
          appid: APPID,
          memberId: id,
          rule,
          idempotencyKey: `${rule}:${id}:${++n}`,
          now,
          timeZone: TZ,
        },
        delta,
      ),
    )
  const lots = (id: number) =>
    get()
      .db.selectFrom('points_lots')
      .select(['points', 'remaining', 'expired', 'notified'])
      .select(sql<string>`expires_at::text`.as('expires'))
      .where('member_id', '=', id)
      .orderBy('ledger_id')
      .execute()
  const balance = async (id: number) =>
    (
      await get()
        .db.selectFrom('members')
        .select('points_balance')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).points_balance

  it('spends take from the oldest lots first', async () => {
    const id = await member()
    const at = new Date('2026-03-01T02:00:00Z')
    await change(id, 100, at)
    await change(id, 50, at)
    await change(id, 30, at)
    await change(id, -120, at)
    expect((await lots(id)).map((l) => l.remaining)).toEqual([0, 30, 30])
    await change(id, -40, at, 'makeup_checkin')
    expect((await lots(id)).map((l) => l.remaining)).toEqual([0, 0, 20])
    expect(await balance(id)).toBe(20)
    await expectLedgerInvariant(get().db)
  })

  it('stamps N days to the end of the community day, never inside the notice window', async () => {
    const id = await member()
    // 2026-03-01 23:30 Shanghai: earned on the 1st, valid through the 31st
    await change(id, 10, new Date('2026-03-01T15:30:00Z'))
    const now = new Date('2026-03-02T00:00:00Z')
    await stampLots(get().db, { now, timeZone: TZ, settings: days(30) })
    expect(await expiringPoints(get().db, id, TZ)).toEqual({ points: 10, lastDay: '2026-03-31' })
    // a lot earned long ago, stamped now: not before the notice days have passed
    const old = await member()
    await change(old, 10, new Date('2025-01-01T02:00:00Z'))
    await stampLots(get().db, { now, timeZone: TZ, settings: days(30, 7) })
    expect(await expiringPoints(get().db, old, TZ)).toEqual({ points: 10, lastDay: '2026-03-09' })
  })

  it('year_end: valid through the end of the year after earning; off: never', async () => {
    const id = await member()
    await change(id, 10, new Date('2026-05-01T02:00:00Z'))
    const now = new Date('2026-05-02T00:00:00Z')
    await stampLots(get().db, {
      now,
      timeZone: TZ,
      settings: { policy: { mode: 'year_end' }, noticeDays: 7 },
    })
    expect(await expiringPoints(get().db, id, TZ)).toEqual({ points: 10, lastDay: '2027-12-31' })
    const never = await member()
    await change(never, 10, new Date('2026-05-01T02:00:00Z'))
    await stampLots(get().db, {
      now,
      timeZone: TZ,
      settings: { policy: { mode: 'off' }, noticeDays: 7 },
    })
    expect(await expiringPoints(get().db, never, TZ)).toBe(null)
    expect((await lots(never))[0]!.expires).toBe('infinity')
    // stamped once: a later policy does not change it
    await stampLots(get().db, { now, timeZone: TZ, settings: days(1) })
    expect((await lots(never))[0]!.expires).toBe('infinity')
    // never expired (the earlier tests' stamped lots are: none of theirs is left for later tests)
    await expireLots(get().db, { now: new Date('2040-01-01T00:00:00Z'), timeZone: TZ })
    expect(await balance(never)).toBe(10)
    expect(await balance(id)).toBe(0)
  })

  it('expires due lots as one ledger entry per member; the rest stays', async () => {
    const id = await member()
    await change(id, 100, new Date('2026-04-01T02:00:00Z'))
    await change(id, 50, new Date('2026-04-10T02:00:00Z'))
    await change(id, -30, new Date('2026-04-11T02:00:00Z'))
    await stampLots(get().db, {
      now: new Date('2026-04-11T03:00:00Z'),
      timeZone: TZ,
      settings: days(10, 0),
    })
    // the first lot is valid through 04-11, the second through 04-20
    await expireLots(get().db, { now: new Date('2026-04-11T15:59:59Z'), timeZone: TZ })
    expect(await balance(id)).toBe(120)
    const run = await expireLots(get().db, { now: new Date('2026-04-11T16:05:00Z'), timeZone: TZ })
    expect(run).toEqual({ members: 1, points: 70 })
    expect(await balance(id)).toBe(50)
    const entries = await get()
      .db.selectFrom('points_ledger')
      .select(['delta', 'balance_after', 'rule', 'earned'])
      .select(sql<string>`day::text`.as('day'))
      .where('member_id', '=', id)
      .where('rule', '=', 'points_expiry')
      .execute()
    expect(entries).toEqual([
      { delta: -70, balance_after: 50, rule: 'points_expiry', earned: 0, day: '2026-04-12' },
    ])
    expect((await lots(id)).map((l) => [l.remaining, l.expired])).toEqual([
      [0, 70],
      [50, 0],
    ])
    // a second run finds nothing more of this member's
    await expireLots(get().db, { now: new Date('2026-04-11T16:06:00Z'), timeZone: TZ })
    expect(await balance(id)).toBe(50)
    await expectLedgerInvariant(get().db)
  })

  it('announces once per member and expiry day, after quiet hours, subscribed members only', async () => {
    const id = await member()
    const gone = await member(false)
    for (const m of [id, gone]) {
      await change(m, 40, new Date('2026-06-01T02:00:00Z'))
      await change(m, 2, new Date('2026-06-01T03:00:00Z'))
      await change(m, 5, new Date('2026-06-03T02:00:00Z'))
    }
    const settings = days(30, 7)
    await stampLots(get().db, { now: new Date('2026-06-03T05:00:00Z'), timeZone: TZ, settings })
    // 2026-06-24 00:05 Shanghai: the lots valid through 07-01 are inside the 7-day window
    const now = new Date('2026-06-23T16:05:00Z')
    const first = await announceExpiringPoints(get().db, { now, settings, campaigns, t })
    expect(first).toEqual({ notices: 1, points: 42 })
    const again = await announceExpiringPoints(get().db, { now, settings, campaigns, t })
    expect(again).toEqual({ notices: 0, points: 0 })
    const items = await get()
      .db.selectFrom('push_outbox')
      .selectAll()
      .where('source', 'like', 'points_expiry:%')
      .where('appid', '=', APPID)
      .execute()
    expect(items).toHaveLength(1)
    const [item] = items
    expect(item!.source).toBe('points_expiry:2026-07-01')
    expect(item!.kind).toBe('custom')
    expect(item!.lane).toBe(1)
    // quiet hours 22:00–08:00: held until 08:00 Shanghai
    expect(item!.next_attempt_at.toISOString()).toBe('2026-06-24T00:00:00.000Z')
    expect(JSON.parse(item!.payload)).toEqual({
      msgtype: 'text',
      text: { content: t('points.expiryNotice', { points: 42, date: '2026-07-01' }) },
    })
    // the next batch (valid through 07-03) is its own notice, two days later
    const later = await announceExpiringPoints(get().db, {
      now: new Date('2026-06-25T16:05:00Z'),
      settings,
      campaigns,
      t,
    })
    expect(later).toEqual({ notices: 1, points: 5 })
    expect(
      await announceExpiringPoints(get().db, { now, settings: days(30, 0), campaigns, t }),
    ).toEqual({ notices: 0, points: 0 })
  })

  it('the daily run stamps, expires and announces; Σ ledger = balance throughout', async () => {
    const id = await member()
    await change(id, 25, new Date('2026-08-01T02:00:00Z'))
    const settings = days(3, 1)
    const run = (iso: string) =>
      runPointsExpiry(get().db, { now: new Date(iso), settings, campaigns, t })
    const day1 = await run('2026-08-01T16:05:00Z')
    expect(day1.stamped).toBeGreaterThanOrEqual(1)
    expect(await expiringPoints(get().db, id, TZ)).toEqual({ points: 25, lastDay: '2026-08-04' })
    await run('2026-08-03T16:05:00Z') // 08-04 00:05: the notice
    const noticed = await lots(id)
    expect(noticed[0]!.notified).toBe(true)
    await change(id, -5, new Date('2026-08-04T02:00:00Z'))
    await run('2026-08-04T16:05:00Z') // 08-05 00:05: expired
    expect(await balance(id)).toBe(0)
    expect(await expiringPoints(get().db, id, TZ)).toBe(null)
    await expectLedgerInvariant(get().db)
  })

  it('the expire-points job runs the passes with the configured policy', async () => {
    const id = await member()
    await change(id, 12, new Date('2026-11-01T02:00:00Z'))
    const job = findJob('expire-points')!
    const config = testConfig({ POINTS_EXPIRY: '2', POINTS_EXPIRY_NOTICE_DAYS: '0' })
    const clock = { now: () => new Date('2026-11-03T16:05:00Z') }
    const metrics = nodeMetrics({ status: cachedOpsStatus(get().db, clock, [job.name]) })
    const ctx = (iso: string) => ({
      db: get().db,
      clock: { now: () => new Date(iso) },
      logger: silentLogger,
      config,
      metrics,
      slot: new Date(iso),
    })
    await job.run(ctx('2026-11-01T16:05:00Z'))
    expect(await expiringPoints(get().db, id, TZ)).toEqual({ points: 12, lastDay: '2026-11-03' })
    const result = await job.run(ctx('2026-11-03T16:05:00Z'))
    expect(result).toMatchObject({ expiredMembers: 1, expiredPoints: 12, notices: 0 })
    expect(await balance(id)).toBe(0)
    // counted in the points.expired metric (Prometheus: quanzi_points_expired_total)
    const { body } = await metrics.render!()
    expect(body).toMatch(/^quanzi_points_expired_total 12$/m)
  })

  it('expiry racing spends: every point is spent or expired once, never below zero', async () => {
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const ids: number[] = []
    for (let i = 0; i < 6; i++) {
      const id = await member()
      ids.push(id)
      await change(id, 60, new Date('2026-09-01T02:00:00Z'))
      await change(id, 40, new Date('2026-09-20T02:00:00Z'))
    }
    await stampLots(get().db, {
      now: new Date('2026-09-20T03:00:00Z'),
      timeZone: TZ,
      settings: days(10, 0),
    })
    const now = new Date('2026-09-25T02:00:00Z')
    await Promise.all([
      ...ids.map((id, i) => change(id, -50, now, 'redeem', pools[i % pools.length])),
      ...pools.map((db) => expireLots(db, { now, timeZone: TZ, batch: 2 })),
      ...ids.map((id, i) => change(id, -30, now, 'redeem', pools[(i + 1) % pools.length])),
    ])
    // whatever ran first, each member ends with the 40 of the second lot or less
    for (const id of ids) {
      const left = await balance(id)
      const expired = await get()
        .db.selectFrom('points_ledger')
        .select((eb) => eb.fn.sum<number>('delta').as('d'))
        .where('member_id', '=', id)
        .where('rule', '=', 'points_expiry')
        .executeTakeFirstOrThrow()
      expect(left).toBeLessThanOrEqual(40)
      expect(left).toBeGreaterThanOrEqual(0)
      // the first lot (60) is spent or expired, never both for the same point
      expect(Number(expired.d ?? 0)).toBeGreaterThanOrEqual(-60)
    }
    await expireLots(get().db, { now, timeZone: TZ })
    for (const id of ids) expect((await lots(id))[0]!.remaining).toBe(0)
    await expectLedgerInvariant(get().db)
  })

  it('the migration turns existing balances into lots, newest credits first', async () => {
    const id = await member()
    await change(id, 100, new Date('2026-10-01T02:00:00Z'))
    await change(id, 30, new Date('2026-10-02T02:00:00Z'))
    await change(id, 20, new Date('2026-10-03T02:00:00Z'))
    await change(id, -110, new Date('2026-10-04T02:00:00Z'))
    const fifo = (await lots(id)).map((l) => l.remaining)
    const db = get().db as unknown as Kysely<unknown>
    // 0082 builds on the lots (points_lot_uses, the trigger): taken down first, put back after
    await m0082.down(db)
    await m0043.down(db)
    await m0043.up(db)
    await m0082.up(db)
    // the same lots as FIFO spending left them, unstamped
    expect((await lots(id)).map((l) => l.remaining)).toEqual(fifo.filter((r) => r > 0))
    expect((await lots(id)).every((l) => l.expires === null)).toBe(true)
    await expectLedgerInvariant(get().db)
  })

  it('migration 0057 applies over existing lots: they keep spending FIFO, announcing and expiring', async () => {
    const db = get().db as unknown as Kysely<unknown>
    // Lots written and stamped before the migration (0056's functions and indexes) …
    await m0082.down(db) // 0082 redefines the lots trigger 0057 replaced: taken down first
    await m0057.down(db)
    const id = await member()
    await change(id, 40, new Date('2026-06-01T02:00:00Z'))
    await change(id, 2, new Date('2026-06-01T03:00:00Z'))
    await change(id, 5, new Date('2026-06-03T02:00:00Z'))
    const settings = days(30, 7)
    await stampLots(get().db, { now: new Date('2026-06-03T05:00:00Z'), timeZone: TZ, settings })
    await change(id, 7, new Date('2026-06-04T02:00:00Z'))
    await m0057.up(db)
    await m0082.up(db)
    // … and after it: the oldest first, then the notice and the expiry of what is left
    await change(id, -41, new Date('2026-06-05T02:00:00Z'))
    expect((await lots(id)).map((l) => l.remaining)).toEqual([0, 1, 5, 7])
    await stampLots(get().db, { now: new Date('2026-06-05T05:00:00Z'), timeZone: TZ, settings })
    const now = new Date('2026-06-23T16:05:00Z')
    expect(await announceExpiringPoints(get().db, { now, settings, campaigns, t })).toEqual({
      notices: 1,
      points: 1,
    })
    await expireLots(get().db, { now: new Date('2026-07-01T16:05:00Z'), timeZone: TZ })
    expect((await lots(id)).map((l) => [l.remaining, l.expired])).toEqual([
      [0, 0],
      [0, 1],
      [5, 0],
      [7, 0],
    ])
    expect(await balance(id)).toBe(12)
    await expectLedgerInvariant(get().db)
  })

  it('with a spent budget the job stops after a batch a pass, pauses, and its resumed runs do each thing once', async () => {
    const db = get().db
    // Other tests' lots are in this database too: stamp them now, then only these three matter.
    const policy = days(10, 3)
    const a = await member()
    await change(a, 30, new Date('2030-03-01T02:00:00Z'))
    const b = await member()
    await change(b, 20, new Date('2030-03-05T02:00:00Z'))
    await stampLots(db, { now: new Date('2030-03-05T03:00:00Z'), timeZone: TZ, settings: policy })
    await expireLots(db, { now: new Date('2030-03-05T03:00:00Z'), timeZone: TZ })
    const c = await member()
    await change(c, 10, new Date('2030-03-12T02:00:00Z'))
    const config = testConfig({ POINTS_EXPIRY: '10', POINTS_EXPIRY_NOTICE_DAYS: '3' })
    const job = findJob('expire-points')!
    const slot = new Date('2030-03-12T16:05:00Z') // 03-13 00:05: a's lot expired, b's within 3 days
    const statuses: string[] = []
    for (let k = 0; k < 6 && statuses.at(-1) !== 'ran'; k++) {
      const [r] = await runScheduled(
        job,
        {
          db,
          clock: { now: () => new Date(slot.getTime() + k * 60_000) },
          logger: silentLogger,
          config,
        },
        {
          slot: new Date(slot.getTime() + k * 60_000),
          due: k === 0,
          timeZone: TZ,
          worker: `w${k}`,
          budget: chunkBudget(0),
        },
      )
      expect(r!.slot).toEqual(slot)
      statuses.push(r!.status)
    }
    expect(statuses.slice(0, 2)).toEqual(['paused', 'paused'])
    expect(statuses.at(-1)).toBe('ran')
    expect(await balance(a)).toBe(0)
    expect((await lots(b))[0]!.notified).toBe(true)
    expect((await lots(c))[0]!.expires).not.toBe(null)
    const expiries = await db
      .selectFrom('points_ledger')
      .select(['member_id', 'delta'])
      .where('rule', '=', 'points_expiry')
      .where('member_id', 'in', [a, b, c])
      .execute()
    expect(expiries).toEqual([{ member_id: a, delta: -30 }])
    const notices = await db
      .selectFrom('push_outbox')
      .innerJoin('members', 'members.openid', 'push_outbox.openid')
      .select('members.id')
      .where('push_outbox.source', 'like', 'points_expiry:%')
      .where('members.id', 'in', [a, b, c])
      .execute()
    expect(notices).toEqual([{ id: b }])
    // Nothing is left for one more (unbounded) run at the same time.
    const again = await runPointsExpiry(db, {
      now: slot,
      settings: policy,
      campaigns,
      t,
    })
    expect(again).toMatchObject({ stamped: 0, expired: { members: 0 }, announced: { notices: 0 } })
    await expectLedgerInvariant(db)
  })
})
