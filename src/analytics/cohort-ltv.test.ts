import type { Kysely } from 'kysely'
import { beforeAll, expect, it } from 'vitest'
import { fillCohortCells } from '../../migrations/0037_cohort_segments_ltv.js'
import {
  beijingDays,
  campaignRollup,
  paidOrder,
  runningCampaign,
} from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { weekStart } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import { analyticsAdminRoutes } from '../routes/admin-analytics.js'
import { ltvTriangle } from './cohort-ltv.js'
import { buildCohortCells, type CohortSource } from './cohorts.js'

const TZ = 'Asia/Shanghai'
const DAY0 = '2026-08-03' // a Monday
const DAYS = 96
const LAST = DAYS - 1
const { day, at } = beijingDays(DAY0)
const APPID = 'wxltv0000000000001'
const SOURCES: CohortSource[] = ['invite', 'qr', 'organic']

interface SimOrder {
  /** Day index paid, and the hour (Beijing). */
  paid: number
  hour: number
  fen: number
  /** A refund: amount, day index, and whether it succeeded. */
  refund?: { fen: number; day: number; success: boolean }
}
interface SimMember {
  openid: string
  follow: number
  source: CohortSource
  orders: SimOrder[]
}

/** 36 members following over the first 12 days; orders (some before the follow) and refunds. */
function community(): SimMember[] {
  return Array.from({ length: 36 }, (_, i) => {
    const follow = (i * 5) % 12
    const orders: SimOrder[] = []
    if (i % 3 === 0) orders.push({ paid: follow, hour: 23, fen: 990 + i })
    if (i % 4 === 1) orders.push({ paid: follow + 6, hour: 9, fen: 3000 })
    if (i % 5 === 2)
      orders.push({
        paid: follow + 20,
        hour: 12,
        fen: 12_800,
        refund: { fen: 2800, day: follow + 33, success: true },
      })
    if (i % 7 === 3)
      orders.push({
        paid: follow + 61,
        hour: 8,
        fen: 500,
        refund: { fen: 500, day: follow + 62, success: false },
      })
    if (i % 6 === 4) orders.push({ paid: follow + 88, hour: 0, fen: 45_000 })
    // paid before following: never counted, nor its refund
    if (i % 9 === 5 && follow >= 1)
      orders.push({
        paid: follow - 1,
        hour: 10,
        fen: 7000,
        refund: { fen: 7000, day: follow + 2, success: true },
      })
    return {
      openid: `o_ltv_${i}`,
      follow,
      source: SOURCES[i % 3]!,
      orders: orders.filter((o) => o.paid <= LAST),
    }
  })
}

/** Net revenue of members `ms` from their follow day through their day `cut(m)`. */
function revenue(ms: SimMember[], cut: (m: SimMember) => number) {
  let fen = 0
  let payers = 0
  for (const m of ms) {
    const mine = m.orders.filter((o) => o.paid >= m.follow && o.paid <= cut(m))
    if (mine.length > 0) payers++
    for (const o of mine) {
      fen += o.fen
      if (o.refund?.success && o.refund.day <= cut(m)) fen -= o.refund.fen
    }
  }
  return { fen, payers }
}

/** The expected day triangle: ages over by LAST show a figure, the rest null. */
function expectedDays(ms: SimMember[], maxAge: number) {
  const out = []
  for (let c = 0; c <= LAST; c++) {
    const cohort = ms.filter((m) => m.follow === c)
    if (cohort.length === 0) continue
    const cells = Array.from({ length: maxAge + 1 }, (_, k) =>
      c + k <= LAST ? revenue(cohort, (m) => m.follow + k) : null,
    )
    out.push({
      start: day(c),
      size: cohort.length,
      revenueFen: cells.map((x) => x?.fen ?? null),
      perMemberFen: cells.map((x) => (x ? x.fen / cohort.length : null)),
      payers: cells.map((x) => x?.payers ?? null),
    })
  }
  return out
}

/** The expected week triangle: week k is through the member's own day 7k + 6, known 7k + 12 in. */
function expectedWeeks(ms: SimMember[], maxAge: number) {
  const out = []
  for (let w = 0; 7 * w + 12 <= LAST; w++) {
    const cohort = ms.filter((m) => Math.floor(m.follow / 7) === w)
    if (cohort.length === 0) continue
    const cells = Array.from({ length: maxAge + 1 }, (_, k) =>
      7 * w + 7 * k + 12 <= LAST ? revenue(cohort, (m) => m.follow + 7 * k + 6) : null,
    )
    out.push({
      start: day(7 * w),
      size: cohort.length,
      revenueFen: cells.map((x) => x?.fen ?? null),
      perMemberFen: cells.map((x) => (x ? x.fen / cohort.length : null)),
      payers: cells.map((x) => x?.payers ?? null),
    })
  }
  return out
}

async function seed(db: Kysely<Database>, ms: SimMember[]) {
  const ids = await db
    .insertInto('members')
    .values(
      ms.map((m) => ({
        appid: APPID,
        openid: m.openid,
        subscribed: true,
        subscribed_at: at(m.follow),
        first_seen_at: at(m.follow),
      })),
    )
    .returning(['id', 'openid'])
    .execute()
  const id = new Map(ids.map((r) => [r.openid, r.id]))
  await db
    .insertInto('follow_events')
    .values(
      ms.map((m) => ({
        appid: APPID,
        member_id: id.get(m.openid)!,
        at: at(m.follow),
        day: day(m.follow),
        kind: 'follow' as const,
        scene: null,
        source: m.source,
      })),
    )
    .execute()
  let n = 0
  for (const m of ms)
    for (const o of m.orders) {
      n++
      const orderId = await paidOrder(db, APPID, {
        memberId: id.get(m.openid)!,
        fen: o.fen,
        paidAt: at(o.paid, o.hour),
        no: `ltv_${n}`,
      })
      if (o.refund)
        await db
          .insertInto('refunds')
          .values({
            order_id: orderId,
            out_refund_no: `ltv_r_${n}`,
            amount_fen: o.refund.fen,
            reason: '退款',
            status: o.refund.success ? 'success' : 'failed',
            refund_id: null,
            error: null,
            next_attempt_at: null,
            created_at: at(o.refund.day, 11),
            updated_at: at(o.refund.day, 11),
          })
          .execute()
    }
  // a pending order never counts
  const pending = await paidOrder(db, APPID, {
    memberId: ids[0]!.id,
    fen: 99_999,
    paidAt: at(20),
    no: 'ltv_pending',
  })
  await db
    .updateTable('orders')
    .set({ status: 'pending', paid_at: null })
    .where('id', '=', pending)
    .execute()
}

forEachDatabase('lifetime value by cohort', (get) => {
  const ms = community()
  const db = () => get().db
  const q = { appid: APPID, from: day(0), to: day(LAST) }

  beforeAll(async () => {
    expect(weekStart(DAY0)).toBe(DAY0)
    await seed(db(), ms)
    for (let n = 0; n <= LAST; n++)
      await buildCohortCells(db(), { appid: APPID, day: day(n), timeZone: TZ, now: at(n + 1, 4) })
  }, 300_000)

  it('builds the exact day triangle, with d0/d7/d30/d60/d90, in fen', async () => {
    const t = await ltvTriangle(db(), { ...q, grain: 'day', maxAge: 90 })
    expect(t.unit).toBe('fen')
    expect(t.builtThrough).toBe(day(LAST))
    const expected = expectedDays(ms, 90)
    expect(t.cohorts).toEqual(expected)
    // the fixture exercises what it claims: revenue at d0, refunds, a d90 figure
    expect(expected[0]!.revenueFen[0]).toBeGreaterThan(0)
    expect(expected.some((r) => (r.revenueFen[33] ?? 0) < (r.revenueFen[32] ?? 0))).toBe(true)
    for (const age of [0, 7, 30, 60, 90] as const) {
      const reached = ms.filter((m) => m.follow + age <= LAST)
      const r = revenue(reached, (m) => m.follow + age)
      expect(t.summary[`d${age}`]).toEqual({
        perMemberFen: r.fen / reached.length,
        revenueFen: r.fen,
        size: reached.length,
        payers: r.payers,
        cohorts: new Set(reached.map((m) => m.follow)).size,
      })
    }
    expect(t.summary.d90.size).toBeGreaterThan(0)
    expect(t.pooled[30]).toEqual({ age: 30, ...t.summary.d30 })
  })

  it('builds the week triangle and filters by source', async () => {
    const weeks = await ltvTriangle(db(), { ...q, grain: 'week', maxAge: 12 })
    expect(weeks.cohorts).toEqual(expectedWeeks(ms, 12))
    for (const source of SOURCES) {
      const mine = ms.filter((m) => m.source === source)
      const t = await ltvTriangle(db(), { ...q, grain: 'day', maxAge: 40, source })
      expect(t.source).toBe(source)
      expect(t.cohorts).toEqual(expectedDays(mine, 40))
      const w = await ltvTriangle(db(), { ...q, grain: 'week', maxAge: 12, source })
      expect(w.cohorts).toEqual(expectedWeeks(mine, 12))
    }
  })

  it('equals a full count of everything built (the migration fill), segment cells too', async () => {
    const read = async () => ({
      ltv: await db()
        .selectFrom('cohort_ltv')
        .selectAll()
        .where('appid', '=', APPID)
        .orderBy('grain')
        .orderBy('source')
        .orderBy('cohort_start')
        .orderBy('age')
        .execute(),
      segments: await db()
        .selectFrom('cohort_segment_retention')
        .selectAll()
        .where('appid', '=', APPID)
        .orderBy('grain')
        .orderBy('segment')
        .orderBy('cohort_start')
        .orderBy('source')
        .orderBy('age')
        .execute(),
    })
    const built = await read()
    expect(built.ltv.length).toBeGreaterThan(100)
    await db().deleteFrom('cohort_ltv').execute()
    await db().deleteFrom('cohort_segment_retention').execute()
    await fillCohortCells(db() as unknown as Kysely<unknown>, TZ)
    expect(await read()).toEqual(built)
  })

  it('answers GET ltv, and the triangles and campaigns as CSV; refuses bad input', async () => {
    const app = analyticsAdminRoutes({
      db: db(),
      clock: { now: () => at(DAYS, 9) },
      timeZone: TZ,
      appids: [APPID],
    })
    const ltv = await app.request(`/ltv?from=${day(0)}&to=${day(2)}&maxAge=3`)
    expect(ltv.status).toBe(200)
    const json = await ltv.json()
    expect(json.cohorts).toEqual(expectedDays(ms, 3).filter((r) => r.start <= day(2)))
    const csv = await app.request(`/ltv?from=${day(0)}&to=${day(2)}&maxAge=3&format=csv`)
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    expect(csv.headers.get('content-disposition')).toBe(
      `attachment; filename="ltv-day-${day(0)}-${day(2)}.csv"`,
    )
    const rows = expectedDays(ms, 3).filter((r) => r.start <= day(2))
    expect(await csv.text()).toBe(
      [
        'cohort,size,age_0,age_1,age_2,age_3',
        ...rows.map((r) => [r.start, r.size, ...r.revenueFen].join(',')),
        '',
      ].join('\n'),
    )
    // `to` defaults to yesterday; ages not over yet are empty cells
    const recent = await app.request(
      `/ltv?grain=week&from=${day(0)}&maxAge=12&source=qr&format=csv`,
    )
    const lines = (await recent.text()).trim().split('\n')
    expect(lines[0]).toBe(
      `cohort,size,${Array.from({ length: 13 }, (_, k) => `age_${k}`).join(',')}`,
    )
    const weeks = expectedWeeks(
      ms.filter((m) => m.source === 'qr'),
      12,
    )
    expect(weeks[1]!.revenueFen[12]).toBeNull()
    expect(lines.slice(1)).toEqual(
      weeks.map((r) => [r.start, r.size, ...r.revenueFen.map((x) => x ?? '')].join(',')),
    )
    const cohorts = await app.request(
      `/cohorts?from=${day(0)}&to=${day(1)}&maxAge=2&source=invite&format=csv`,
    )
    expect(cohorts.headers.get('content-disposition')).toBe(
      `attachment; filename="cohorts-day-invite-${day(0)}-${day(1)}.csv"`,
    )
    const invite = ms.filter((m) => m.source === 'invite' && m.follow <= 1)
    const byDay = [0, 1]
      .map((c) => invite.filter((m) => m.follow === c))
      .filter((c) => c.length > 0)
    // no activity was seeded beyond the follows' own cohort bits: nobody retained
    expect(await cohorts.text()).toBe(
      [
        'cohort,size,age_0,age_1,age_2',
        ...byDay.map((c) => `${day(c[0]!.follow)},${c.length},0,0,0`),
        '',
      ].join('\n'),
    )
    for (const bad of [
      '/ltv?maxAge=91',
      '/ltv?grain=month',
      '/ltv?source=poster',
      '/ltv?segment=loyal',
      `/ltv?from=${day(5)}&to=${day(1)}`,
      '/ltv?format=xlsx',
      '/cohorts?format=pdf',
      '/campaigns?format=xml',
    ])
      expect([bad, (await app.request(bad)).status]).toEqual([bad, 400])
    expect((await app.request('/ltv?appid=wxnope')).status).toBe(404)
  })

  it('answers the campaigns’ variant funnel as CSV, quoting names', async () => {
    const now = at(DAYS - 2, 10)
    const campaign = await runningCampaign(db(), APPID, '召回, "第二轮"', now)
    await db()
      .insertInto('campaign_rollups')
      .values([
        campaignRollup(campaign, now, 'A', 80, 8),
        campaignRollup(campaign, now, 'B', 90, 18),
      ])
      .execute()
    const app = analyticsAdminRoutes({
      db: db(),
      clock: { now: () => at(DAYS, 9) },
      timeZone: TZ,
      appids: [APPID],
    })
    const res = await app.request(`/campaigns?from=${day(DAYS - 3)}&to=${day(DAYS - 1)}&format=csv`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="campaigns-${day(DAYS - 3)}-${day(DAYS - 1)}.csv"`,
    )
    const name = '"召回, ""第二轮"""'
    expect(await res.text()).toBe(
      [
        'campaign_id,campaign,status,variant,audience,enqueued,capped,opted_out,unreachable,sent,failed,delivered,clicked,converted,click_rate,conversion_rate,withdrawn_opted_out,cancelled,unknown,queued',
        `${campaign},${name},running,A,80,80,0,0,0,78,2,77,16,8,0.2,0.1,0,0,0,0`,
        `${campaign},${name},running,B,90,90,0,0,0,88,2,87,36,18,0.4,0.2,0,0,0,0`,
        '',
      ].join('\n'),
    )
  })
})
