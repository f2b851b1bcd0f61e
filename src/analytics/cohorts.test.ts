import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fillCohortCells } from '../../migrations/0037_cohort_segments_ltv.js'
import { beijingDays } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { rng } from '../../test/prng.js'
import { placeInSegment } from '../../test/segment-fixtures.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { addDays, weekStart } from '../community/community-time.js'
import type { Segment } from '../db/schema.js'
import { createPusher } from '../sandbox/pusher.js'
import { buildCohortCells, type CohortSource, cohortTriangle } from './cohorts.js'
import { buildDay } from './rollup.js'

const TZ = 'Asia/Shanghai'
const DAY0 = '2026-11-02'
const DAYS = 40
const LAST = DAYS - 1
const { day, at } = beijingDays(DAY0)
const APPID = 'wxc0h0rt0000000001'
const SOURCES: CohortSource[] = ['invite', 'qr', 'organic']
const SEGMENTS: (Segment | null)[] = ['new', 'active', 'loyal', 'at_risk', null]

interface SimMember {
  openid: string
  /** Day index of the first follow. */
  follow: number
  source: CohortSource
  segment: Segment | null
  /** Day indexes with activity. */
  active: Set<number>
  /** Unfollows the day after following and follows again (through another source) 3 days in. */
  refollows: boolean
}

/** 90 members following over the first 32 days, with decaying activity. */
function community(seed: number): SimMember[] {
  const u = rng(seed)
  return Array.from({ length: 90 }, (_, i) => {
    const follow = Math.floor(u() * 32)
    const stickiness = 0.1 + 0.6 * u()
    const active = new Set([follow])
    for (let d = follow + 1; d < DAYS; d++)
      if (u() < stickiness * Math.exp(-(d - follow) / 12) + 0.04) active.add(d)
    // some were active before their first follow (a fact a cohort never counts)
    if (i % 11 === 0 && follow >= 2) active.add(follow - 2)
    return {
      openid: `o_cohort_${i}`,
      follow,
      source: SOURCES[Math.floor(u() * 3)]!,
      segment: SEGMENTS[Math.floor(u() * SEGMENTS.length)]!,
      active,
      refollows: i % 7 === 0,
    }
  })
}

interface Expected {
  start: string
  size: number
  retained: (number | null)[]
  shares: (number | null)[]
}

const row = (start: string, size: number, retained: (number | null)[]): Expected => ({
  start,
  size,
  retained,
  shares: retained.map((r) => (r === null ? null : r / size)),
})

/** The day triangle computed from the simulation itself. */
function expectedDays(ms: SimMember[], maxAge: number): Expected[] {
  const out: Expected[] = []
  for (let c = 0; c <= LAST; c++) {
    const cohort = ms.filter((m) => m.follow === c)
    if (cohort.length === 0) continue
    const retained = Array.from({ length: maxAge + 1 }, (_, k) =>
      c + k <= LAST ? cohort.filter((m) => m.active.has(c + k)).length : null,
    )
    out.push(row(day(c), cohort.length, retained))
  }
  return out
}

/** The week triangle: week k = any of the member's own days 7k … 7k + 6, known 7k + 12 days in. */
function expectedWeeks(ms: SimMember[], maxAge: number): Expected[] {
  const out: Expected[] = []
  for (let w = 0; w * 7 <= LAST; w++) {
    if (w * 7 + 12 > LAST) continue
    const cohort = ms.filter((m) => Math.floor(m.follow / 7) === w)
    if (cohort.length === 0) continue
    const retained = Array.from({ length: maxAge + 1 }, (_, k) =>
      w * 7 + 7 * k + 12 <= LAST
        ? cohort.filter((m) =>
            Array.from({ length: 7 }, (_, i) => m.follow + 7 * k + i).some((d) => m.active.has(d)),
          ).length
        : null,
    )
    out.push(row(day(7 * w), cohort.length, retained))
  }
  return out
}

/** d-k pooled over the day cohorts that reached k. */
function expectedShare(ms: SimMember[], k: number) {
  const reached = ms.filter((m) => m.follow + k <= LAST)
  const retained = reached.filter((m) => m.active.has(m.follow + k)).length
  const cohorts = new Set(reached.map((m) => m.follow)).size
  return { share: retained / reached.length, retained, size: reached.length, cohorts }
}

forEachDatabase('retention cohorts from the facts', (get) => {
  const ms = community(20261102)
  const db = () => get().db

  beforeAll(async () => {
    expect(weekStart(DAY0)).toBe(DAY0)
    const ids = await db()
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
    for (const segment of SEGMENTS)
      if (segment)
        await placeInSegment(
          db(),
          APPID,
          ms.filter((m) => m.segment === segment).map((m) => id.get(m.openid)!),
          segment,
        )
    const follows = ms.flatMap((m) => {
      const member_id = id.get(m.openid)!
      const event = (n: number, kind: 'follow' | 'unfollow', source: CohortSource) => ({
        appid: APPID,
        member_id,
        at: at(n),
        day: day(n),
        kind,
        scene: null,
        source,
      })
      const first = event(m.follow, 'follow', m.source)
      if (!m.refollows) return [first]
      const other = m.source === 'invite' ? 'organic' : 'invite'
      return [
        first,
        event(m.follow + 1, 'unfollow', m.source),
        event(m.follow + 3, 'follow', other),
      ]
    })
    await db().insertInto('follow_events').values(follows).execute()
    const days = ms.flatMap((m) =>
      [...m.active].map((n) => ({
        appid: APPID,
        day: day(n),
        member_id: id.get(m.openid)!,
        kinds: 32,
      })),
    )
    await db().insertInto('member_days').values(days).execute()
  })

  const segmentCells = () =>
    db()
      .selectFrom('cohort_segment_retention')
      .selectAll()
      .where('appid', '=', APPID)
      .orderBy('grain')
      .orderBy('segment')
      .orderBy('cohort_start')
      .orderBy('source')
      .orderBy('age')
      .execute()
  const cells = () =>
    db()
      .selectFrom('cohort_retention')
      .select(['grain', sql<string>`cohort_start::text`.as('start'), 'source', 'age'])
      .select(['cohort_size', 'retained'])
      .where('appid', '=', APPID)
      .orderBy('grain')
      .orderBy('cohort_start')
      .orderBy('source')
      .orderBy('age')
      .execute()

  it('writes the cells known on one day even when no earlier day was built', async () => {
    const r = await buildCohortCells(db(), { appid: APPID, day: day(LAST), timeZone: TZ })
    // every member's cohort was read, the re-follows starting none
    expect(r.members).toBe(ms.length)
    expect(r.weekCells).toBe(0) // day 39 is a Wednesday: no week closes
    const written = (await cells()).filter((c) => c.grain === 'day')
    // per source, and for all sources ('') the same sums
    for (const e of expectedDays(ms, LAST)) {
      const age = Math.round((Date.parse(day(LAST)) - Date.parse(e.start)) / 86_400_000)
      const mine = written.filter((c) => c.start === e.start)
      const all = mine.filter((c) => c.source === '')
      expect(all.map((c) => [c.age, c.cohort_size, c.retained])).toEqual([
        [age, e.size, e.retained[age]],
      ])
      const bySource = mine.filter((c) => c.source !== '')
      expect(bySource.reduce((n, c) => n + c.cohort_size, 0)).toBe(e.size)
      expect(bySource.reduce((n, c) => n + c.retained, 0)).toBe(e.retained[age])
    }
  })

  it('builds day by day into the exact day triangle, with d1/d7/d30', async () => {
    for (let n = 0; n <= LAST; n++)
      await buildCohortCells(db(), { appid: APPID, day: day(n), timeZone: TZ, now: at(n + 1, 4) })
    const t = await cohortTriangle(db(), {
      appid: APPID,
      grain: 'day',
      from: day(0),
      to: day(LAST),
      maxAge: 30,
    })
    expect(t.basis).toBe('cells')
    expect(t.builtThrough).toBe(day(LAST))
    expect(t.cohorts).toEqual(expectedDays(ms, 30))
    expect(t.summary.d1).toEqual(expectedShare(ms, 1))
    expect(t.summary.d7).toEqual(expectedShare(ms, 7))
    expect(t.summary.d30).toEqual(expectedShare(ms, 30))
    expect(t.summary.d30.cohorts).toBe(
      new Set(ms.filter((m) => m.follow <= 9).map((m) => m.follow)).size,
    )
    expect(t.pooled[7]).toEqual({ age: 7, ...expectedShare(ms, 7) })
    expect(t.reference).toEqual({ d1: 0.25, d7: 0.15, d30: 0.08 })
    // a narrower range and age: the same rows, cut
    const cut = await cohortTriangle(db(), {
      appid: APPID,
      grain: 'day',
      from: day(5),
      to: day(9),
      maxAge: 3,
    })
    expect(cut.cohorts).toEqual(
      expectedDays(ms, 3).filter((c) => c.start >= day(5) && c.start <= day(9)),
    )
    // d30 still reported though the triangle stops at age 3
    expect(cut.summary.d30).toEqual(
      expectedShare(
        ms.filter((m) => m.follow >= 5 && m.follow <= 9),
        30,
      ),
    )
  })

  it('filters by acquisition source from the cells', async () => {
    for (const source of SOURCES) {
      const mine = ms.filter((m) => m.source === source)
      const t = await cohortTriangle(db(), {
        appid: APPID,
        grain: 'day',
        from: day(0),
        to: day(LAST),
        maxAge: 10,
        source,
      })
      expect(t.source).toBe(source)
      expect(t.cohorts).toEqual(expectedDays(mine, 10))
      expect(t.summary.d7).toEqual(expectedShare(mine, 7))
    }
  })

  it('builds the week triangle on Saturdays, each member over their own seven-day weeks', async () => {
    const t = await cohortTriangle(db(), {
      appid: APPID,
      grain: 'week',
      from: day(3),
      to: day(LAST),
      maxAge: 4,
    })
    expect(t.from).toBe(day(0))
    expect(t.ageUnit).toBe('week')
    const expected = expectedWeeks(ms, 4)
    expect(expected.map((e) => e.retained.filter((r) => r !== null).length)).toEqual([4, 3, 2, 1])
    expect(t.cohorts).toEqual(expected)
    expect(t.summary.d7).toEqual(expectedShare(ms, 7))
    const invites = await cohortTriangle(db(), {
      appid: APPID,
      grain: 'week',
      from: day(0),
      to: day(LAST),
      maxAge: 4,
      source: 'invite',
    })
    expect(invites.cohorts).toEqual(
      expectedWeeks(
        ms.filter((m) => m.source === 'invite'),
        4,
      ),
    )
  })

  it('filters by the current segment, from the segment cells', async () => {
    for (const segment of ['new', 'active', 'loyal', 'at_risk'] as const) {
      const mine = ms.filter((m) => m.segment === segment)
      const days = await cohortTriangle(db(), {
        appid: APPID,
        grain: 'day',
        from: day(0),
        to: day(LAST),
        maxAge: 30,
        segment,
      })
      expect(days.basis).toBe('segment-cells')
      expect(days.cohorts).toEqual(expectedDays(mine, 30))
      expect(days.summary.d1).toEqual(expectedShare(mine, 1))
      const weeks = await cohortTriangle(db(), {
        appid: APPID,
        grain: 'week',
        from: day(0),
        to: day(LAST),
        maxAge: 4,
        segment,
      })
      expect(weeks.cohorts).toEqual(expectedWeeks(mine, 4))
    }
    const both = await cohortTriangle(db(), {
      appid: APPID,
      grain: 'day',
      from: day(0),
      to: day(LAST),
      maxAge: 12,
      segment: 'loyal',
      source: 'qr',
    })
    expect(both.cohorts).toEqual(
      expectedDays(
        ms.filter((m) => m.segment === 'loyal' && m.source === 'qr'),
        12,
      ),
    )
  })

  it('follows a member into their new segment at the next build', async () => {
    const moved = ms.filter((m) => m.segment === 'new').slice(0, 3)
    expect(moved.length).toBe(3)
    const ids = await db()
      .selectFrom('members')
      .select('id')
      .where('appid', '=', APPID)
      .where(
        'openid',
        'in',
        moved.map((m) => m.openid),
      )
      .execute()
    await placeInSegment(
      db(),
      APPID,
      ids.map((r) => r.id),
      'churned',
    )
    await db()
      .insertInto('segment_transitions')
      .values(
        ids.map((r) => ({
          appid: APPID,
          member_id: r.id,
          from_segment: 'new' as const,
          to_segment: 'churned' as const,
          at: at(DAYS, 3),
        })),
      )
      .execute()
    const q = { appid: APPID, grain: 'day' as const, from: day(0), to: day(LAST), maxAge: 30 }
    // not before the build: the segment filter reads the segment as of the last build
    expect((await cohortTriangle(db(), { ...q, segment: 'churned' })).cohorts).toEqual([])
    const r = await buildCohortCells(db(), { appid: APPID, day: day(LAST), timeZone: TZ })
    expect(r.segments).toBe(3)
    for (const m of moved) m.segment = 'churned'
    const churned = await cohortTriangle(db(), { ...q, segment: 'churned' })
    expect(churned.cohorts).toEqual(expectedDays(moved, 30))
    const stillNew = await cohortTriangle(db(), { ...q, segment: 'new' })
    expect(stillNew.cohorts).toEqual(
      expectedDays(
        ms.filter((m) => m.segment === 'new'),
        30,
      ),
    )
    // the moved members left every built cell of their old segment, week cells too
    const week = { ...q, grain: 'week' as const, maxAge: 4 }
    expect((await cohortTriangle(db(), { ...week, segment: 'churned' })).cohorts).toEqual(
      expectedWeeks(moved, 4),
    )
    expect((await cohortTriangle(db(), { ...week, segment: 'new' })).cohorts).toEqual(
      expectedWeeks(
        ms.filter((m) => m.segment === 'new'),
        4,
      ),
    )
    // a build without new transitions moves no one
    expect(
      (await buildCohortCells(db(), { appid: APPID, day: day(LAST), timeZone: TZ })).segments,
    ).toBe(0)
  })

  it('serves a segment filter from its cells alone, without reading cohort_members', async () => {
    const q = { appid: APPID, grain: 'day' as const, from: day(0), to: day(LAST), maxAge: 30 }
    const before = await cohortTriangle(db(), { ...q, segment: 'loyal', source: 'invite' })
    expect(before.cohorts).toEqual(
      expectedDays(
        ms.filter((m) => m.segment === 'loyal' && m.source === 'invite'),
        30,
      ),
    )
    const rollback = new Error('rollback')
    await expect(
      db()
        .transaction()
        .execute(async (trx) => {
          await trx.deleteFrom('cohort_members').execute()
          const without = await cohortTriangle(trx, { ...q, segment: 'loyal', source: 'invite' })
          expect(without).toEqual(before)
          throw rollback
        }),
    ).rejects.toBe(rollback)
  })

  it('rebuilds a day to the same cells, and refuses a day not over yet', async () => {
    const before = await cells()
    const segmentBefore = await segmentCells()
    expect(before.length).toBeGreaterThan(0)
    expect(segmentBefore.length).toBeGreaterThan(0)
    for (const n of [0, 12, 19, 26, 33, LAST])
      await buildCohortCells(db(), { appid: APPID, day: day(n), timeZone: TZ })
    expect(await cells()).toEqual(before)
    expect(await segmentCells()).toEqual(segmentBefore)
    // kept by deltas through the moves above, they equal a full count (the migration's fill)
    await db().deleteFrom('cohort_segment_retention').execute()
    await db().deleteFrom('cohort_ltv').execute()
    await fillCohortCells(db() as unknown as Kysely<unknown>, TZ)
    // (cells a segment's last member of a cohort left stay, empty; reads skip them)
    const emptied = segmentBefore.filter((c) => c.cohort_size === 0)
    expect(emptied.length).toBeGreaterThan(0)
    expect(emptied.every((c) => c.retained === 0)).toBe(true)
    expect(await segmentCells()).toEqual(segmentBefore.filter((c) => c.cohort_size > 0))
    await expect(
      buildCohortCells(db(), { appid: APPID, day: day(DAYS), timeZone: TZ, now: at(DAYS, 23) }),
    ).rejects.toThrow(RangeError)
  })

  it('refuses requests it cannot answer cheaply', async () => {
    const q = { appid: APPID, grain: 'day' as const, from: day(0), to: day(9), maxAge: 30 }
    await expect(cohortTriangle(db(), { ...q, maxAge: 91 })).rejects.toThrow(RangeError)
    await expect(cohortTriangle(db(), { ...q, grain: 'week', maxAge: 27 })).rejects.toThrow(
      RangeError,
    )
    await expect(cohortTriangle(db(), { ...q, from: day(10) })).rejects.toThrow(RangeError)
    await expect(cohortTriangle(db(), { ...q, to: addDays(DAY0, 400) })).rejects.toThrow(RangeError)
    await expect(cohortTriangle(db(), { ...q, from: '2026-02-30' })).rejects.toThrow(RangeError)
  })
})

forEachDatabase('retention cohorts through real pushes', (get) => {
  let server: TestServer
  const state = { now: new Date() }
  beforeAll(async () => {
    server = await startServer(get().db, { clock: { now: () => state.now } })
  })
  afterAll(() => server.close())

  it('counts a follow through an invite, a poster and a search, and a re-follow as activity', async () => {
    const chat = createPusher({
      url: `${server.url}/wechat`,
      account: SAFE_ACCOUNT,
      now: () => state.now.getTime(),
    })
    const push = async (n: number, f: () => Promise<unknown>) => {
      state.now = at(n)
      await f()
    }
    await push(0, () => chat.event('o_a', 'subscribe', { EventKey: 'qrscene_inv_ABCDEFGH' }))
    await push(0, () => chat.event('o_b', 'subscribe', { EventKey: 'qrscene_poster-7' }))
    await push(0, () => chat.event('o_c', 'subscribe'))
    await push(1, () => chat.text('o_a', '你好'))
    await push(2, () => chat.event('o_c', 'unsubscribe'))
    await push(3, () => chat.event('o_d', 'subscribe', { EventKey: 'qrscene_inv_ABCDEFGH' }))
    await push(7, () => chat.text('o_b', '签到'))
    await push(8, () => chat.event('o_c', 'subscribe'))
    await push(8, () => chat.text('o_d', '积分'))
    const appid = SAFE_ACCOUNT.appid
    for (let n = 0; n <= 9; n++) {
      await buildDay(get().db, {
        appid,
        day: day(n),
        timeZone: TZ,
        now: at(n + 1, 4),
        today: day(n + 1),
      })
      await buildCohortCells(get().db, { appid, day: day(n), timeZone: TZ, now: at(n + 1, 4) })
    }
    const q = { appid, grain: 'day' as const, from: day(0), to: day(9), maxAge: 9 }
    const all = await cohortTriangle(get().db, q)
    const n = null
    expect(all.cohorts.map(({ start, size, retained }) => ({ start, size, retained }))).toEqual([
      // c's unfollow on day 2 is no activity; its follow again on day 8 is, and starts no cohort
      { start: day(0), size: 3, retained: [3, 1, 0, 0, 0, 0, 0, 1, 1, 0] },
      { start: day(3), size: 1, retained: [1, 0, 0, 0, 0, 1, 0, n, n, n] },
    ])
    const invites = await cohortTriangle(get().db, { ...q, source: 'invite' })
    expect(invites.cohorts.map((c) => [c.start, c.size, c.retained[1], c.shares[5]])).toEqual([
      [day(0), 1, 1, 0],
      [day(3), 1, 0, 1],
    ])
    const qr = await cohortTriangle(get().db, { ...q, source: 'qr' })
    expect(qr.cohorts.map((c) => [c.start, c.size, c.retained[7]])).toEqual([[day(0), 1, 1]])
    expect(all.summary.d1).toEqual({ share: 1 / 4, retained: 1, size: 4, cohorts: 2 })
    expect(all.summary.d7).toEqual({ share: 1 / 3, retained: 1, size: 3, cohorts: 1 })
    expect(all.summary.d30.share).toBeNull()
  })
})

describe('cohort test helpers', () => {
  it('simulate what they claim', () => {
    const ms = community(20261102)
    expect(ms.some((m) => m.refollows)).toBe(true)
    expect(new Set(ms.map((m) => m.source)).size).toBe(3)
    expect(ms.every((m) => m.active.has(m.follow))).toBe(true)
  })
})
