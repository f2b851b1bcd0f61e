import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { ConfigError, loadConfig } from '../config.js'
import { DEFAULT_SEGMENT_THRESHOLDS, recomputeSegments, segmentCounts } from './segments.js'

const TZ = 'Asia/Shanghai'

describe('segment thresholds from configuration', () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env)
      return []
    } catch (error) {
      if (error instanceof ConfigError) return error.problems
      throw error
    }
  }

  it('defaults to the operations plan', () => {
    expect(loadConfig({}).segments).toEqual(DEFAULT_SEGMENT_THRESHOLDS)
    expect(DEFAULT_SEGMENT_THRESHOLDS).toEqual({
      dormantDays: 90,
      atRiskDays: 30,
      newDays: 7,
      activeDays: 7,
      loyalPurchases: 2,
      loyalStreakDays: 14,
    })
    expect(
      loadConfig({ SEGMENT_LOYAL_PURCHASES: '3', SEGMENT_LOYAL_STREAK_DAYS: '0' }).segments,
    ).toMatchObject({ loyalPurchases: 3, loyalStreakDays: 0 })
  })

  it('refuses thresholds that contradict each other, and the retired SEGMENT_LOYAL_DAYS', () => {
    expect(problems({ SEGMENT_ACTIVE_DAYS: '31' })).toEqual([
      'SEGMENT_ACTIVE_DAYS: must be at most SEGMENT_AT_RISK_DAYS',
    ])
    expect(problems({ SEGMENT_AT_RISK_DAYS: '90' })).toEqual([
      'SEGMENT_AT_RISK_DAYS: must be less than SEGMENT_DORMANT_DAYS',
    ])
    expect(problems({ SEGMENT_LOYAL_PURCHASES: '0' })).toEqual([
      'SEGMENT_LOYAL_PURCHASES: must be at least 1',
    ])
    expect(problems({ SEGMENT_LOYAL_DAYS: '30' })).toEqual([
      expect.stringMatching(/^SEGMENT_LOYAL_DAYS: no longer used — .*SEGMENT_LOYAL_PURCHASES/),
    ])
  })
})

forEachDatabase('lifecycle segments', (get, dbName) => {
  const appid = `wx${dbName === 'pglite' ? 'e' : 'f'}000000000000001`
  const now = new Date('2026-11-25T12:00:00Z') // 20:00 on the 25th in Shanghai
  const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000)
  const follower = (d: number) => ({
    subscribed_at: daysAgo(d),
    first_seen_at: daysAgo(d),
    last_inbound_at: daysAgo(d),
  })

  it('puts every member in the first matching segment of the lifecycle, records each move, rewrites only changes', async () => {
    const { db } = get()
    // [openid, fields, check-ins (days ago → streak), expected]
    const members: [string, Record<string, unknown>, [number, number][], string][] = [
      [
        'o_churned',
        {
          ...follower(100),
          subscribed: false,
          unsubscribed_at: daysAgo(1),
          last_active_at: daysAgo(1),
        },
        [],
        'churned',
      ],
      // 43004 "not following" sets subscribed = false without unsubscribed_at
      [
        'o_churned_43004',
        {
          ...follower(200),
          subscribed: false,
          last_active_at: daysAgo(2),
          last_inbound_at: daysAgo(2),
        },
        [],
        'churned',
      ],
      // never known to follow (a WeCom contact): not churned, the other rules apply
      [
        'o_contact',
        { subscribed: false, first_seen_at: daysAgo(60), last_active_at: daysAgo(1) },
        [],
        'active',
      ],
      [
        'o_dormant',
        {
          ...follower(400),
          last_active_at: daysAgo(91),
          purchase_count: 9,
          last_purchased_at: daysAgo(91),
        },
        [],
        'dormant',
      ],
      ['o_dormant_90', { ...follower(400), last_active_at: daysAgo(90) }, [], 'dormant'],
      ['o_never_acted', { first_seen_at: daysAgo(120) }, [], 'dormant'],
      ['o_at_risk', { ...follower(80), last_active_at: daysAgo(45) }, [], 'at_risk'],
      ['o_at_risk_30', { ...follower(80), last_active_at: daysAgo(30) }, [], 'at_risk'],
      [
        'o_quiet_buyer',
        {
          ...follower(80),
          last_active_at: daysAgo(45),
          purchase_count: 3,
          last_purchased_at: daysAgo(45),
        },
        [],
        'at_risk',
      ],
      ['o_new', { ...follower(3), last_active_at: daysAgo(3) }, [], 'new'],
      [
        'o_new_buyer',
        {
          ...follower(2),
          last_active_at: daysAgo(1),
          purchase_count: 2,
          last_purchased_at: daysAgo(1),
        },
        [],
        'new',
      ],
      // followed again two days ago: new since that follow
      [
        'o_refollowed',
        { ...follower(300), subscribed_at: daysAgo(2), last_active_at: daysAgo(2) },
        [],
        'new',
      ],
      // first seen by a menu click (follow time unknown): new by first_seen_at
      ['o_seen_new', { first_seen_at: daysAgo(5), last_active_at: daysAgo(5) }, [], 'new'],
      [
        'o_repeat_buyer',
        {
          ...follower(300),
          last_active_at: daysAgo(20),
          purchase_count: 2,
          last_purchased_at: daysAgo(200),
        },
        [],
        'loyal',
      ],
      [
        'o_one_buy',
        {
          ...follower(300),
          last_active_at: daysAgo(2),
          purchase_count: 1,
          last_purchased_at: daysAgo(2),
        },
        [],
        'active',
      ],
      // a 14-day streak still running (checked in yesterday, community time)
      [
        'o_streak',
        { ...follower(60), last_active_at: daysAgo(1) },
        [
          [1, 14],
          [2, 13],
        ],
        'loyal',
      ],
      // a longer streak, but broken: the last check-in was three days ago
      ['o_broken_streak', { ...follower(60), last_active_at: daysAgo(3) }, [[3, 20]], 'active'],
      ['o_short_streak', { ...follower(60), last_active_at: daysAgo(0) }, [[0, 13]], 'active'],
      ['o_active', { ...follower(60), last_active_at: daysAgo(6) }, [], 'active'],
      // quiet for 7–29 days: not at risk yet, still active (README → Lifecycle segments)
      ['o_quiet', { ...follower(60), last_active_at: daysAgo(15) }, [], 'active'],
    ]
    const inserted = await db
      .insertInto('members')
      .values(
        members.map(([openid, fields]) => ({
          appid,
          openid,
          subscribed: true,
          first_seen_at: now,
          ...fields,
        })),
      )
      .returning(['id', 'openid'])
      .execute()
    const idOf = new Map(inserted.map((m) => [m.openid, m.id]))
    const checkins = members.flatMap(([openid, , days]) =>
      days.map(([ago, streak]) => ({
        appid,
        member_id: idOf.get(openid)!,
        day: daysAgo(ago).toISOString().slice(0, 10),
        streak,
        points: 5,
        created_at: daysAgo(ago),
      })),
    )
    await db.insertInto('checkins').values(checkins).execute()
    const run = (at: Date) =>
      recomputeSegments(db, {
        now: at,
        thresholds: DEFAULT_SEGMENT_THRESHOLDS,
        timeZone: TZ,
        appid,
      })
    const transitions = () =>
      db
        .selectFrom('segment_transitions')
        .innerJoin('members', 'members.id', 'segment_transitions.member_id')
        .select([
          'members.openid',
          'segment_transitions.appid',
          'segment_transitions.from_segment',
          'segment_transitions.to_segment',
          'segment_transitions.at',
        ])
        .where('segment_transitions.appid', '=', appid)
        .orderBy('segment_transitions.id')
        .execute()

    // the members' own rows are not rewritten: the segments are narrow rows of their own
    const versions = () =>
      sql<{ openid: string; xmin: string }>`select openid, xmin::text from members
        where appid = ${appid} order by openid`
        .execute(db)
        .then((r) => r.rows)
    const before = await versions()
    expect(await run(now)).toBe(members.length)
    expect(await versions()).toEqual(before)
    const rows = await db
      .selectFrom('members as m')
      .leftJoin('member_segments as s', 's.member_id', 'm.id')
      .select(['m.openid', 's.segment', 's.appid', 's.since'])
      .where('m.appid', '=', appid)
      .execute()
    const by = new Map(rows.map((r) => [r.openid, r]))
    for (const [openid, , , segment] of members)
      expect(by.get(openid)?.segment, openid).toBe(segment)
    expect(rows.every((r) => r.appid === appid && r.since?.getTime() === now.getTime())).toBe(true)
    // every member's first segment is recorded, from nothing
    const first = await transitions()
    expect(first).toHaveLength(members.length)
    expect(new Map(first.map((t) => [t.openid, [t.from_segment, t.to_segment]]))).toEqual(
      new Map(members.map(([openid, , , segment]) => [openid, [null, segment]])),
    )
    expect(first.every((t) => t.appid === appid && t.at.getTime() === now.getTime())).toBe(true)

    // nothing changed: nothing written, nothing recorded
    const hour = new Date(now.getTime() + 3600_000)
    expect(await run(hour)).toBe(0)
    expect(await transitions()).toHaveLength(members.length)

    // o_active is found unfollowed (43004: no unsubscribed_at), o_at_risk comes back
    const later = new Date(now.getTime() + 2 * 3600_000)
    await db
      .updateTable('members')
      .set({ subscribed: false })
      .where('openid', '=', 'o_active')
      .execute()
    await db
      .updateTable('members')
      .set({ last_active_at: later })
      .where('openid', '=', 'o_at_risk')
      .execute()
    expect(await run(later)).toBe(2)
    const moves = (await transitions()).slice(members.length)
    expect(moves.sort((x, y) => x.openid.localeCompare(y.openid))).toEqual([
      { openid: 'o_active', appid, from_segment: 'active', to_segment: 'churned', at: later },
      { openid: 'o_at_risk', appid, from_segment: 'at_risk', to_segment: 'active', at: later },
    ])
    const moved = await db
      .selectFrom('members as m')
      .innerJoin('member_segments as s', 's.member_id', 'm.id')
      .select(['s.segment', 's.since'])
      .where('m.openid', '=', 'o_at_risk')
      .executeTakeFirstOrThrow()
    expect(moved).toEqual({ segment: 'active', since: later })
    expect(await segmentCounts(db, appid)).toEqual({
      new: 4,
      active: 6,
      loyal: 2,
      at_risk: 2,
      dormant: 3,
      churned: 3,
    })
  })

  it('records a consistent history when recomputes race', async () => {
    const { db, name } = get()
    const other = `wx${dbName === 'pglite' ? 'e' : 'f'}000000000000002`
    await db
      .insertInto('members')
      .values(
        Array.from({ length: 300 }, (_, i) => ({
          appid: other,
          openid: `o_race_${i}`,
          subscribed: true,
          ...follower(60),
          last_active_at: daysAgo(1),
        })),
      )
      .execute()
    // Two "processes" (pools) at once, one a month and a half later: every member moves twice. On
    // PostgreSQL a third holds the recompute's lock until both recomputes are under way, so they
    // start at once for certain.
    const at = (d: Date, on: typeof db) =>
      recomputeSegments(on, {
        now: d,
        thresholds: DEFAULT_SEGMENT_THRESHOLDS,
        timeZone: TZ,
        appid: other,
      })
    const later = new Date(now.getTime() + 45 * 86_400_000)
    let a: number
    let b: number
    if (name === 'postgres') {
      let release = () => {}
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      let holding: Promise<void> = Promise.resolve()
      await new Promise<void>((locked) => {
        holding = get()
          .open()
          .transaction()
          .execute(async (trx) => {
            await sql`select pg_advisory_xact_lock(hashtext('quanzi:recompute-segments'))`.execute(
              trx,
            )
            locked()
            await released
          })
      })
      const both = Promise.all([at(now, db), at(later, get().open())])
      for (let i = 0; i < 100; i++) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query like '%segment%'`.execute(db)
        if (rows[0]!.n >= 2) break
        await new Promise((r) => setTimeout(r, 50))
      }
      release()
      await holding
      ;[a, b] = await both
    } else [a, b] = await Promise.all([at(now, db), at(later, db)])
    const history = await db
      .selectFrom('segment_transitions')
      .select(['member_id', 'from_segment', 'to_segment'])
      .where('appid', '=', other)
      .orderBy('id')
      .execute()
    expect(history).toHaveLength(a + b)
    // each member's moves chain: every one leaves the segment the previous one entered
    const last = new Map<number, string | null>()
    for (const t of history) {
      expect(t.from_segment).toBe(last.get(t.member_id) ?? null)
      last.set(t.member_id, t.to_segment)
    }
    const segments = await db
      .selectFrom('members as m')
      .leftJoin('member_segments as s', 's.member_id', 'm.id')
      .select(['m.id', 's.segment'])
      .where('m.appid', '=', other)
      .execute()
    expect(segments).toHaveLength(300)
    for (const m of segments) expect(last.get(m.id)).toBe(m.segment)
  })
})
