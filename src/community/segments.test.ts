import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { DEFAULT_SEGMENT_THRESHOLDS, recomputeSegments, segmentCounts } from './segments.js'

forEachDatabase('lifecycle segments', (get, dbName) => {
  const appid = `wx${dbName === 'pglite' ? 'e' : 'f'}000000000000001`
  const now = new Date('2026-11-25T12:00:00Z')
  const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000)

  it('puts every member in the first matching segment, stamps entry, rewrites only changes', async () => {
    const members: [string, Record<string, unknown>, string][] = [
      [
        'o_churned',
        { subscribed: false, unsubscribed_at: daysAgo(1), last_active_at: daysAgo(1) },
        'churned',
      ],
      [
        'o_dormant',
        {
          first_seen_at: daysAgo(400),
          last_active_at: daysAgo(91),
          purchase_count: 9,
          last_purchased_at: daysAgo(91),
        },
        'dormant',
      ],
      ['o_never_acted', { first_seen_at: daysAgo(120) }, 'dormant'],
      [
        'o_loyal',
        {
          first_seen_at: daysAgo(300),
          last_active_at: daysAgo(2),
          purchase_count: 6,
          last_purchased_at: daysAgo(10),
        },
        'loyal',
      ],
      [
        'o_five_buys',
        {
          first_seen_at: daysAgo(300),
          last_active_at: daysAgo(2),
          purchase_count: 5,
          last_purchased_at: daysAgo(10),
        },
        'active',
      ],
      ['o_new', { first_seen_at: daysAgo(3), last_active_at: daysAgo(3) }, 'new'],
      [
        'o_active',
        {
          first_seen_at: daysAgo(60),
          last_active_at: daysAgo(6),
          purchase_count: 1,
          last_purchased_at: daysAgo(50),
        },
        'active',
      ],
      ['o_at_risk', { first_seen_at: daysAgo(80), last_active_at: daysAgo(45) }, 'at_risk'],
      [
        'o_quiet_buyer',
        {
          first_seen_at: daysAgo(80),
          last_active_at: daysAgo(45),
          purchase_count: 1,
          last_purchased_at: daysAgo(45),
        },
        'active',
      ],
    ]
    await get()
      .db.insertInto('members')
      .values(
        members.map(([openid, fields]) => ({
          appid,
          openid,
          subscribed: true,
          first_seen_at: daysAgo(30),
          ...fields,
        })),
      )
      .execute()
    const run = (at: Date) =>
      recomputeSegments(get().db, { now: at, thresholds: DEFAULT_SEGMENT_THRESHOLDS, appid })
    expect(await run(now)).toBe(members.length)
    const rows = await get()
      .db.selectFrom('members')
      .select(['openid', 'segment', 'segment_since'])
      .where('appid', '=', appid)
      .execute()
    const by = new Map(rows.map((r) => [r.openid, r]))
    for (const [openid, , segment] of members) expect(by.get(openid)?.segment, openid).toBe(segment)
    expect(rows.every((r) => r.segment_since?.getTime() === now.getTime())).toBe(true)
    // nothing changed: nothing written
    expect(await run(new Date(now.getTime() + 3600_000))).toBe(0)
    // the new member becomes active a week later; only they move, with a new entry time
    const later = new Date(now.getTime() + 5 * 86_400_000)
    await get()
      .db.updateTable('members')
      .set({ last_active_at: later })
      .where('openid', '=', 'o_new')
      .execute()
    expect(await run(later)).toBe(1)
    const moved = await get()
      .db.selectFrom('members')
      .select(['segment', 'segment_since'])
      .where('openid', '=', 'o_new')
      .executeTakeFirstOrThrow()
    expect(moved).toEqual({ segment: 'active', segment_since: later })
    expect(await segmentCounts(get().db, appid)).toEqual({
      new: 0,
      active: 4,
      loyal: 1,
      at_risk: 1,
      dormant: 2,
      churned: 1,
    })
  })
})
