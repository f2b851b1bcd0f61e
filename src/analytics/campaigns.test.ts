import { expect, it } from 'vitest'
import { campaignRollup } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { localDayStart } from '../community/community-time.js'
import { campaignAnalytics, requiredSample } from './campaigns.js'
import { liveToday } from './series.js'

it('needs the textbook sample to tell 10 % from 15 % (α 0.05, power 0.8)', () => {
  // (1.959964 + 0.841621)² × (0.1·0.9 + 0.15·0.85) / 0.05² = 682.6 → 683
  expect(requiredSample(0.1, 0.15)).toBe(683)
  expect(requiredSample(0.15, 0.1)).toBe(683)
  expect(requiredSample(0.2, 0.2)).toBeNull()
})

it('finds the start of a community day in its time zone', () => {
  expect(localDayStart('2026-11-01', 'Asia/Shanghai').toISOString()).toBe(
    '2026-10-31T16:00:00.000Z',
  )
  expect(localDayStart('2026-03-08', 'America/New_York').toISOString()).toBe(
    '2026-03-08T05:00:00.000Z',
  )
})

/** Today and the live reader of the campaign list (the community of these tests). */
const clockOf = (db: Parameters<typeof liveToday>[0]) => ({
  today: '2026-11-20',
  timeZone: 'Asia/Shanghai',
  live: liveToday(db, 0),
})

forEachDatabase('campaign analytics', (get) => {
  it('reports campaigns that ran in the range, with quota used and sample warnings', async () => {
    const { db } = get()
    const now = new Date('2026-11-20T02:00:00Z')
    const campaign = await db
      .insertInto('campaigns')
      .values({
        appid: 'wxanalytics00000001',
        name: '召回',
        status: 'finished',
        audience: '{}',
        variants: '[]',
        schedule_cron: null,
        run_at: now,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db
      .insertInto('campaign_rollups')
      .values([
        campaignRollup(campaign.id, now, 'A', 80, 8),
        campaignRollup(campaign.id, now, 'B', 90, 18),
      ])
      .execute()
    const inRange = (
      await campaignAnalytics(db, {
        appid: 'wxanalytics00000001',
        from: new Date('2026-11-19T16:00:00Z'),
        to: new Date('2026-11-20T16:00:00Z'),
        ...clockOf(db),
      })
    ).campaigns
    expect(inRange).toHaveLength(1)
    expect(inRange[0]).toMatchObject({
      name: '召回',
      quotaUsed: 80 + 90,
      sample: { smallestVariant: 80, neededPerVariant: requiredSample(0.1, 0.2) },
    })
    expect(inRange[0]!.warnings).toEqual([
      '每个版本至少需要 100 人，最少的只有 80 人',
      `要可靠地区分两个版本的转化率，每个版本需要约 ${requiredSample(0.1, 0.2)} 人（现有 80）`,
    ])
    const before = (
      await campaignAnalytics(db, {
        appid: 'wxanalytics00000001',
        from: new Date('2026-11-18T16:00:00Z'),
        to: new Date('2026-11-19T16:00:00Z'),
        ...clockOf(db),
      })
    ).campaigns
    expect(before).toEqual([])
  })
})
