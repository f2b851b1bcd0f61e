/**
 * The report page's redemption line: the A/B test on redemptions in words (recommendations'
 * uplift); and its table, where every enqueued push is in a column (over `app.request()`, on every
 * database).
 */
import type { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { campaignRollup } from '../../../test/analytics-fixtures.js'
import { consoleTestApp, manualClock, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { placeInSegment } from '../../../test/segment-fixtures.js'
import { SAFE_ACCOUNT } from '../../../test/server.js'
import { changeCampaign, createCampaign } from '../../admin/actions/campaign-actions.js'
import { translator } from '../../bot/i18n.js'
import { type VariantCounts, variantReport } from '../../community/campaign-report.js'
import { dispatchCampaigns } from '../../community/campaigns.js'
import { consoleTranslator } from '../i18n.js'
import { redemptionVerdict } from './campaign-report.js'

/** A variant's counts: the rollup fixture's, with `redeemed` of them redeemed. */
const counts = (variant: string, enqueued: number, redeemed: number): VariantCounts => ({
  ...campaignRollup(0, new Date(0), variant, enqueued, 0),
  redeemed,
})

describe('the redemption verdict', () => {
  it('says the redemption uplift of one variant over the other, with its significance', () => {
    const zh = consoleTranslator('zh-CN')
    // A names {{rec}}: 120 of 1000 redeemed; B does not: 50 of 1000 (z ≈ 5.6)
    const clear = variantReport([counts('A', 1000, 120), counts('B', 1000, 50)])
    expect(clear.abTest?.redemption?.significant).toBe(true)
    expect(redemptionVerdict(clear, zh)).toBe(
      '兑换率：B 比 A 低 7.0 个百分点（p = < 0.001，差异显著）',
    )
    const unclear = variantReport([counts('A', 100, 6), counts('B', 100, 4)])
    expect(redemptionVerdict(unclear, consoleTranslator('en'))).toBe(
      'Redemption rate: B is 2.0 points lower than A (p = 0.516, not significant yet)',
    )
  })

  it('says nothing without two variants or without a redemption', () => {
    const zh = consoleTranslator('zh-CN')
    expect(redemptionVerdict(variantReport([counts('A', 10, 3)]), zh)).toBeUndefined()
    expect(
      redemptionVerdict(variantReport([counts('A', 10, 0), counts('B', 10, 0)]), zh),
    ).toBeUndefined()
  })
})

forEachDatabase('console campaign report: every enqueued push in a column', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:30Z'))
  const appid = SAFE_ACCOUNT.appid
  const actor = { name: 'op1' }
  const deps = () => ({ db: db().db, clock })
  const columns = async (app: Hono, id: number, cookie: string) => {
    const html = await (
      await app.request(`/console/campaigns/${id}`, { headers: { cookie } })
    ).text()
    return [...html.matchAll(/<th[^>]*>([^<]*)<\/th>/g)].map((m) => m[1])
  }

  it('shows queued pushes, then those a stop cancelled; outcomes no variant has stay hidden', async () => {
    await seedOperators(db().db, clock.now())
    const member = await db()
      .db.insertInto('members')
      .values({ appid, openid: 'o_report_page', subscribed: true, first_seen_at: clock.now() })
      .returning('id')
      .executeTakeFirstOrThrow()
    await placeInSegment(db().db, appid, [member.id], 'at_risk')
    const app = consoleTestApp(db().db, clock)
    const op = await signIn(app, 'op1')
    const k = await createCampaign(deps(), actor, {
      appid,
      name: '停止后',
      audience: { segment: 'at_risk' },
      template: {
        template_id: 'TPL_RECALL',
        data: { thing1: { value: '回来领积分' } },
        url: 'https://shop.example/recall',
      },
      // a one-shot: it runs on while its push is queued, so it can still be paused or stopped
      schedule: { at: '2026-11-20T02:00:00Z' },
      conversionDays: 5,
    })
    await changeCampaign(deps(), actor, { appid, id: k.id, move: 'schedule' })
    await dispatchCampaigns(db().db, {
      now: clock.now(),
      slot: clock.now(),
      settings: {
        timeZone: 'Asia/Shanghai',
        capHours: 0,
        capSlackMinutes: 0,
        quietHours: null,
        publicBaseUrl: 'https://quanzi.example',
      },
      t: translator('zh-CN'),
    })
    const queued = await columns(app, k.id, op.cookie)
    expect(queued).toContain('待发送')
    expect(queued).not.toContain('已取消（停止推送）')
    const list = await (
      await app.request('/console/campaigns', { headers: { cookie: op.cookie } })
    ).text()
    expect(list).toContain(`href="/console/campaigns/${k.id}/finish"`)
    expect(list).toContain(`/console/campaigns/${k.id}/pause`)
    expect(await changeCampaign(deps(), actor, { appid, id: k.id, move: 'finish' })).toMatchObject({
      outbox: { cancelled: 1 },
    })
    const stopped = await columns(app, k.id, op.cookie)
    expect(stopped).toContain('已取消（停止推送）')
    for (const hidden of ['待发送', '发送前退订', '结果未知']) expect(stopped).not.toContain(hidden)
  })
})
