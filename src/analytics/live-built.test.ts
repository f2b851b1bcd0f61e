/**
 * A day read live has the figures the same day has once built (one definition of an active
 * member, of the account's points, of a dimension-less total), and the invite report's K is the
 * series' K.
 */
import type { Kysely } from 'kysely'
import { beforeAll, expect, it } from 'vitest'
import { addMembers, paidOrder } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { inviteReport } from '../community/invite-report.js'
import type { Database } from '../db/schema.js'
import { analyticsAdminRoutes } from '../routes/admin-analytics.js'
import { ALERT_CHECKS } from './alert-checks.js'
import { ALERT_RULES } from './alert-rules.js'
import { buildDay } from './rollup.js'
import { liveToday, readSeries } from './series.js'

const TZ = 'Asia/Shanghai'
const D0 = '2026-10-06'
const D1 = '2026-10-07'
const TODAY = '2026-10-08'
/** An instant of a community day (Beijing time). */
const at = (day: string, hhmm: string) => new Date(`${day}T${hhmm}:00+08:00`)
const NOW = at(TODAY, '10:00')

forEachDatabase('a day read live equals the same day built', (get, dbName) => {
  const A = `wx${dbName === 'pglite' ? 'e' : 'f'}live000000001`
  const MP = `wx${dbName === 'pglite' ? 'e' : 'f'}livemp0000001`
  const shop = { settings: { appid: A, mpAppid: MP } }
  let db: Kysely<Database>
  let f1: number
  let f2: number
  let p: number

  beforeAll(async () => {
    db = get().db
    ;[f1, f2] = (await addMembers(db, A, 'o_live_f', 2, at(D0, '08:00'), {
      last_inbound_at: NOW,
    })) as [number, number]
    await db
      .updateTable('members')
      .set({ last_active_at: NOW })
      .where('id', 'in', [f1, f2])
      .execute()
    // the mini program's own member: buys, never writes to the account
    ;[p] = (await addMembers(db, MP, 'o_live_mp', 1, at(D1, '08:00'))) as [number]
    const active = (day: string, id: number) =>
      db.insertInto('member_days').values({ appid: A, day, member_id: id, kinds: 1 }).execute()
    // the invite funnel: f1 shares on D0 and D1, invites f2 on D0, who qualifies on D1
    await db
      .insertInto('invite_shares')
      .values([
        { appid: A, member_id: f1, day: D0 },
        { appid: A, member_id: f1, day: D1 },
      ])
      .execute()
    await db
      .insertInto('invites')
      .values({
        appid: A,
        invitee_key: `${A}-f2`,
        invitee_member_id: f2,
        inviter_member_id: f1,
        source: 'oa_qr',
        status: 'qualified',
        created_at: at(D0, '11:00'),
        qualified_at: at(D1, '11:00'),
      })
      .execute()
    // D0: f1 writes; built
    await active(D0, f1)
    await buildDay(db, { appid: A, day: D0, timeZone: TZ, now: NOW, today: TODAY, mpAppids: [MP] })
    // D1 (not built: read live, the job's lag): f1 writes, f2 and the mini-program member only buy
    await active(D1, f1)
    await paidOrder(db, A, { memberId: f2, fen: 4900, paidAt: at(D1, '12:00'), no: `${A}-1` })
    await paidOrder(db, A, { memberId: p, fen: 9900, paidAt: at(D1, '13:00'), no: `${A}-2` })
    // their purchase points, frozen: the follower's under the account, the buyer's under MP
    for (const [m, appid, points] of [
      [f2, A, 49],
      [p, MP, 99],
    ] as const) {
      await db
        .insertInto('points_ledger')
        .values({
          appid,
          member_id: m,
          delta: points,
          rule: 'purchase',
          idempotency_key: `live-${appid}-${m}`,
          balance_after: points,
          day: D1,
          created_at: at(D1, '13:00'),
          state: 'frozen',
        })
        .execute()
      await db.updateTable('members').set({ points_frozen: points }).where('id', '=', m).execute()
    }
    // today: f1 writes, f2 only buys; f1 checks in (streak 3)
    await active(TODAY, f1)
    await paidOrder(db, A, { memberId: f2, fen: 4900, paidAt: at(TODAY, '09:00'), no: `${A}-3` })
    await db
      .insertInto('checkins')
      .values({ appid: A, member_id: f1, day: TODAY, streak: 3, points: 5, created_at: NOW })
      .execute()
    // segments now, and a move on D1
    await db
      .insertInto('member_segments')
      .values([
        { appid: A, member_id: f1, segment: 'active', since: at(D1, '03:00') },
        { appid: A, member_id: f2, segment: 'new', since: at(D1, '03:00') },
      ])
      .execute()
    await db
      .insertInto('segment_transitions')
      .values({
        appid: A,
        member_id: f1,
        from_segment: 'new',
        to_segment: 'active',
        at: at(D1, '03:00'),
      })
      .execute()
  })

  const series = (metric: string, o: { from?: string; granularity?: 'day' | 'month' } = {}) =>
    readSeries(db, {
      appid: A,
      metric,
      from: o.from ?? D1,
      to: TODAY,
      granularity: o.granularity ?? 'day',
      now: NOW,
      timeZone: TZ,
      live: liveToday(db, 0, shop),
    })
  const values = async (metric: string) =>
    (await series(metric)).points.map((x) =>
      x.value === null ? null : Math.round(x.value * 1e6) / 1e6,
    )
  const built = async (day: string, metric: string, dim = '') => {
    const row = await db
      .selectFrom('analytics_daily')
      .select('value')
      .where('appid', '=', A)
      .where('day', '=', day)
      .where('metric', '=', metric)
      .where('dim', '=', dim)
      .executeTakeFirst()
    return row === undefined ? 0 : Math.round(Number(row.value) * 1e6) / 1e6
  }
  const ACTIVITY = [
    'activity.dau',
    'activity.wau',
    'activity.mau',
    'activity.returning',
    'activity.stickiness',
    'commerce.arpu_fen',
    'checkins.rate',
    'invites.share_rate',
  ]

  it('counts buyers (a mini-program buyer too) in DAU, WAU, MAU and ARPU live as the build does', async () => {
    const live: Record<string, (number | null)[]> = {}
    for (const m of ACTIVITY) live[m] = await values(m)
    // D1: f1 wrote, f2 and the mini-program member bought; today: f1 wrote, f2 bought
    expect(live['activity.dau']).toEqual([3, 2])
    expect(live['activity.wau']).toEqual([3, 3])
    expect(live['commerce.arpu_fen']).toEqual([Math.round((14800 / 3) * 1e6) / 1e6, 2450])
    // the alert's actives so far are today's DAU
    await ALERT_CHECKS.active_members_drop({
      db,
      appid: A,
      now: NOW,
      timeZone: TZ,
      settings: ALERT_RULES.active_members_drop.defaults,
      quietHours: null,
      jobs: [],
      mismatches: async () => null,
    })
    const sample = await db
      .selectFrom('alert_samples')
      .select('value')
      .where('appid', '=', A)
      .executeTakeFirstOrThrow()
    expect(Number(sample.value)).toBe(2)
    // built, the same days have the same figures
    for (const day of [D1, TODAY])
      await buildDay(db, { appid: A, day, timeZone: TZ, now: NOW, today: TODAY, mpAppids: [MP] })
    for (const m of ACTIVITY)
      expect({ metric: m, values: [await built(D1, m), await built(TODAY, m)] }).toEqual({
        metric: m,
        values: live[m],
      })
  })

  it("counts the account's mini-program members' points in its points figures", async () => {
    // D1 is built now; today is live, chained from it
    expect(await built(D1, 'points.frozen')).toBe(148)
    expect(await values('points.frozen')).toEqual([148, 148])
  })

  it('reads a metric written per dimension only as the sum of its dimensions, in JSON and CSV', async () => {
    const app = analyticsAdminRoutes({
      db,
      clock: { now: () => NOW },
      timeZone: TZ,
      appids: [A],
      shop,
    })
    const read = async (metric: string, format = 'json') => {
      const res = await app.request(
        `/series?appid=${A}&metric=${metric}&from=${D1}&to=${TODAY}&format=${format}`,
      )
      expect(res.status).toBe(200)
      return format === 'csv'
        ? res.text()
        : (await res.json()).points.map((x: { value: number }) => x.value)
    }
    // D1 built, today live: two members in segments, two subscribed followers at their level
    expect(await read('segments.size')).toEqual([2, 2])
    expect(await read('members.level')).toEqual([2, 2])
    expect(await read('segments.flow')).toEqual([1, 0])
    expect(await read('checkins.streak')).toEqual([0, 1])
    expect(await read('segments.size', 'csv')).toBe(
      `start,value,partial\n${D1},2,false\n${TODAY},2,true\n`,
    )
    // a dimension still reads its own figure
    const one = await app.request(
      `/series?appid=${A}&metric=segments.size&dim=active&from=${D1}&to=${D1}`,
    )
    expect((await one.json()).points[0].value).toBe(1)
  })

  it("gives the invite report the series' K over the same days", async () => {
    const report = await inviteReport(db, {
      appid: A,
      from: D0,
      to: TODAY,
      timeZone: TZ,
      now: NOW,
      live: liveToday(db, 0, shop),
    })
    const k = await series('invites.k_factor', { from: D0, granularity: 'month' })
    expect(k.points).toHaveLength(1)
    // Σ qualified ÷ Σ DAU = 1 ÷ (1 + 3 + 2)
    expect(report.totals.k).toBe(Math.round((k.points[0]!.value ?? Number.NaN) * 10_000) / 10_000)
    expect(report.totals.k).toBe(0.1667)
    expect(report.activeMemberDays).toBe(6)
  })
})
