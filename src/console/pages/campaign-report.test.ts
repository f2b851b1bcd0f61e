/**
 * The report page's redemption line: the A/B test on redemptions in words (recommendations'
 * uplift); and its table, where every enqueued push is in a column (over `app.request()`, on every
 * database).
 */
import type { Hono } from 'hono'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { campaignRollup } from '../../../test/analytics-fixtures.js'
import {
  consoleTestApp,
  dispatchDue,
  manualClock,
  seedOperators,
  signIn,
} from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { watchedStatements } from '../../../test/plan-rows.js'
import { placeInSegment } from '../../../test/segment-fixtures.js'
import { SAFE_ACCOUNT } from '../../../test/server.js'
import { changeCampaign, createCampaign } from '../../admin/actions/campaign-actions.js'
import { campaignReportView, findCampaign } from '../../admin/reads/campaign-views.js'
import {
  markConversions,
  type VariantCounts,
  variantReport,
} from '../../community/campaign-report.js'
import { stopping } from '../../stopping.js'
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
    await dispatchDue(db().db, clock.now())
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

  it("counts a recurring campaign's reach in members, once each, apart from its pushes summed over the runs", async () => {
    await seedOperators(db().db, clock.now())
    const at = manualClock(new Date('2026-11-20T02:00:30Z'))
    const app = consoleTestApp(db().db, at)
    const join = async (openids: string[]) => {
      const rows = await db()
        .db.insertInto('members')
        .values(
          openids.map((openid) => ({ appid, openid, subscribed: true, first_seen_at: at.now() })),
        )
        .returning('id')
        .execute()
      await placeInSegment(
        db().db,
        appid,
        rows.map((r) => r.id),
        'loyal',
      )
      return rows.map((r) => r.id)
    }
    const [, returning] = await join(['o_reach_0', 'o_reach_1', 'o_reach_2'])
    const k = await createCampaign({ db: db().db, clock: at }, actor, {
      appid,
      name: '每日',
      audience: { segment: 'loyal' },
      template: { template_id: 'TPL_DAILY', data: { thing1: { value: '今日签到' } } },
      schedule: { cron: '0 10 * * *' },
      conversionDays: 7,
    })
    await changeCampaign({ db: db().db, clock: at }, actor, { appid, id: k.id, move: 'schedule' })
    const run = (slot: string) => dispatchDue(db().db, at.now(), new Date(slot))
    // day 1: three members; day 2: the same three and a newcomer — 7 pushes to 4 members
    expect((await run('2026-11-20T02:00:00Z')).enqueued).toBe(3)
    await join(['o_reach_3'])
    at.advance(86_400_000)
    expect((await run('2026-11-21T02:00:00Z')).enqueued).toBe(4)
    // every push sent a minute after its run; one member active after both: converted in each run
    await db()
      .db.updateTable('push_outbox')
      .set({
        status: 'sent',
        sent_at: sql`(substr(source, length(source) - 23))::timestamptz + interval '1 minute'`,
      })
      .where('source', 'like', `campaign:${k.id}:%`)
      .execute()
    await db()
      .db.updateTable('members')
      .set({ last_active_at: new Date('2026-11-21T03:00:00Z') })
      .where('id', '=', returning!)
      .execute()
    await markConversions(db().db, new Date('2026-11-21T03:10:00Z'))

    const op = await signIn(app, 'op1')
    const html = await (
      await app.request(`/console/campaigns/${k.id}`, { headers: { cookie: op.cookie } })
    ).text()
    const section = (id: string) => html.slice(html.indexOf(`id="${id}"`)).split('</section>')[0]!
    const cells = (part: string) =>
      [...part.matchAll(/<t[dh][^>]*>([^<]*)<\/t[dh]>/g)].map((m) => m[1])
    // reach: 4 members (not 7), 1 converted of 4 enqueued — its rate over members
    expect(cells(section('reach'))).toEqual([
      ...[
        '版本',
        '受众成员',
        '入队成员',
        '已发送成员',
        '转化成员',
        '转化率（转化成员 ÷ 入队成员）',
      ],
      ...['A', '4', '4', '4', '1', '25.0%'],
    ])
    expect(section('reach')).toContain('共 2 次推送')
    // the funnel: pushes summed over the runs, labelled so, its rate over enqueued pushes
    const funnel = cells(section('funnel'))
    const column = (label: string) => funnel[funnel.length / 2 + funnel.indexOf(label)]
    expect(column('受众（各次推送合计）')).toBe('7')
    expect(column('转化')).toBe('2')
    expect(column('转化率（转化 ÷ 入队）')).toBe('28.6%')

    const view = await campaignReportView(
      db().db,
      (await findCampaign(db().db, appid, String(k.id)))!,
      at.now(),
    )
    expect(view.variants.map((v) => [v.audience, v.enqueued, v.converted])).toEqual([[7, 7, 2]])
    // a small campaign's reach is counted for the answer
    expect(view).toMatchObject({ reachAsOf: null, reachRefreshing: false })
    expect(view.reach).toEqual({
      variants: [
        { variant: 'A', audience: 4, enqueued: 4, sent: 4, converted: 1, conversionRate: 0.25 },
      ],
      total: {
        variant: null,
        audience: 4,
        enqueued: 4,
        sent: 4,
        converted: 1,
        conversionRate: 0.25,
      },
      runs: 2,
      prunedRuns: 0,
    })
  })
  it("answers a large campaign's report with no funnel while its first count runs, then the counted one", async () => {
    const at = manualClock(new Date('2026-11-20T02:00:30Z'))
    const k = await createCampaign({ db: db().db, clock: at }, actor, {
      appid,
      name: '首次统计',
      audience: { segment: 'loyal' },
      template: { template_id: 'TPL_FIRST', data: { thing1: { value: '你好' } } },
      schedule: { cron: '0 10 * * *' },
      conversionDays: 7,
    })
    const slot = new Date('2026-11-20T02:00:00Z')
    const member = await db()
      .db.insertInto('members')
      .values({ appid, openid: 'o_first_count', subscribed: true, first_seen_at: slot })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db()
      .db.insertInto('campaign_recipients')
      .values({
        campaign_id: k.id,
        slot,
        member_id: member.id,
        variant: 'A',
        outcome: 'capped',
        enqueued_at: slot,
      })
      .execute()
    const row = (await findCampaign(db().db, appid, String(k.id)))!
    // liveMax 0: one recipient is a large campaign here
    const work: Promise<unknown>[] = []
    const o = { liveMax: 0, waitUntil: (p: Promise<unknown>) => void work.push(p) }
    const first = await campaignReportView(db().db, row, at.now(), o)
    expect(first).toMatchObject({
      counting: true,
      variants: [],
      abTest: null,
      reach: null,
      countsAsOf: null,
      reachRefreshing: true,
    })
    expect(work).toHaveLength(1)
    await Promise.all(work.splice(0))
    const counted = await campaignReportView(db().db, row, at.now(), o)
    expect(counted).toMatchObject({ counting: false, countsAsOf: at.now(), reachAsOf: at.now() })
    expect(counted.variants.map((v) => [v.variant, v.audience, v.skipped.capped])).toEqual([
      ['A', 1, 1],
    ])
    expect(work).toHaveLength(0)
  })

  /**
   * A campaign of 20,001 recipients in one run (members `<prefix>1` …): more than a view counts
   * on the spot (REACH_LIVE_MAX).
   */
  const largeCampaign = async (at: { now(): Date }, name: string, prefix: string) => {
    const k = await createCampaign({ db: db().db, clock: at }, actor, {
      appid,
      name,
      audience: { segment: 'loyal' },
      template: { template_id: 'TPL_BIG', data: { thing1: { value: '你好' } } },
      schedule: { cron: '0 10 * * *' },
      conversionDays: 7,
    })
    const slot = new Date('2026-11-20T02:00:00Z')
    await sql`insert into members (appid, openid, subscribed, first_seen_at)
      select ${appid}, ${prefix} || g, true, ${slot} from generate_series(1, 20001) g`.execute(
      db().db,
    )
    await sql`insert into campaign_recipients (campaign_id, slot, member_id, variant, outcome,
        enqueued_at)
      select ${k.id}, ${slot}, id, 'A', 'capped', ${slot} from members
      where openid like ${`${prefix}%`}`.execute(db().db)
    return k
  }

  it("shows a large campaign's reach as of when it was counted; its first view says it is being counted", async () => {
    await seedOperators(db().db, clock.now())
    const at = manualClock(new Date('2026-11-20T02:00:30Z'))
    // the app's statements, and those of the work it leaves running (the recount), apart
    const requests = watchedStatements(db().db)
    const background = watchedStatements(db().db)
    const app = consoleTestApp(requests.db, at, background.db)
    const op = await signIn(app, 'op1')
    const k = await largeCampaign(at, '大名单', 'o_big_')
    const page = async () =>
      (await app.request(`/console/campaigns/${k.id}`, { headers: { cookie: op.cookie } })).text()
    /** The page's section `id` (the reach by default). */
    const section = (html: string, id = 'reach') =>
      html.slice(html.indexOf(`id="${id}"`)).split('</section>')[0]!
    const firstHtml = await page()
    const first = section(firstHtml)
    expect(first).toContain('名单较大，触达人数正在统计中，请稍后刷新本页。')
    expect(first).not.toContain('<table')
    // …and so is its funnel: that first count counts it too, not this view a second time
    const firstFunnel = section(firstHtml, 'funnel')
    expect(firstFunnel).toContain('名单较大，推送漏斗正在统计中，请稍后刷新本页。')
    expect(firstFunnel).not.toContain('<table')
    expect(section(firstHtml, 'ab')).toContain('名单较大，推送漏斗正在统计中')
    // the count runs on after the answer (Node: by itself): its figures, as of 10:00 Shanghai
    for (let i = 0; i < 200; i++) {
      const row = await db()
        .db.selectFrom('campaign_reach')
        .select('computed_at')
        .where('campaign_id', '=', k.id)
        .executeTakeFirst()
      if (row?.computed_at) break
      await new Promise((r) => setTimeout(r, 50))
    }
    // counted on the database for background work (on PGlite it gives way to requests), slice
    // by slice: none of the counting statements went through the requests' database
    const counting = (seen: { sql: string }[]) =>
      seen.filter((q) => q.sql.includes('from campaign_recipients r')).length
    expect(counting(background.seen)).toBeGreaterThan(2)
    expect(counting(requests.seen)).toBe(0)
    // recounted once a minute old, or 20 times as long as the count took when longer
    const { count_ms } = await db()
      .db.selectFrom('campaign_reach')
      .select('count_ms')
      .where('campaign_id', '=', k.id)
      .executeTakeFirstOrThrow()
    const recountAge = Math.max(60_000, 20 * count_ms!)
    at.advance(30_000)
    const countedHtml = await page()
    const counted = section(countedHtml)
    expect(counted).not.toContain('正在统计中')
    expect(counted).toContain(
      `截至 10:00 的统计（名单较大，最多每 ${Math.ceil(recountAge / 60_000)} 分钟重新统计一次）。`,
    )
    const countedFunnel = section(countedHtml, 'funnel')
    expect(countedFunnel).not.toContain('正在统计中')
    expect(countedFunnel).toContain('<table')
    expect(counted).not.toContain('正在重新统计')
    expect(counted).toContain('>2万<') // 20,001 members
    // its funnel too, as of the same count: pushes recorded since are not in it until the recount
    const html = await page()
    expect(html.slice(html.indexOf('id="funnel"'))).toContain('截至 10:00 的统计')
    const next = new Date('2026-11-21T02:00:00Z')
    await sql`insert into campaign_recipients (campaign_id, slot, member_id, variant, outcome,
        enqueued_at)
      select ${k.id}, ${next}, id, 'A', 'capped', ${next} from members
      where openid in ('o_big_1', 'o_big_2', 'o_big_3')`.execute(db().db)
    const row = await findCampaign(db().db, appid, String(k.id))
    const view = await campaignReportView(db().db, row!, at.now())
    expect(view.countsAsOf).toEqual(new Date('2026-11-20T02:00:30Z'))
    expect(view.variants.map((v) => [v.variant, v.audience])).toEqual([['A', 20_001]])
    // that long after the count: the same figures, said to be recounted
    at.advance(recountAge - 30_000)
    const stale = section(await page())
    expect(stale).toContain('截至 10:00 的统计')
    expect(stale).toContain('正在重新统计，稍后刷新可见。')
  })

  it("keeps a large campaign's recount for the shutdown, which stops it; a stopped server claims none", async () => {
    await seedOperators(db().db, clock.now())
    const at = manualClock(new Date('2026-11-20T02:00:30Z'))
    const server = stopping()
    const kept: Promise<unknown>[] = []
    const app = consoleTestApp(db().db, at, undefined, {
      signal: server.signal,
      keep: (work) => {
        kept.push(work)
        server.keep(work)
      },
    })
    const op = await signIn(app, 'op1')
    const k = await largeCampaign(at, '停机', 'o_stop_')
    const page = () => app.request(`/console/campaigns/${k.id}`, { headers: { cookie: op.cookie } })
    expect((await page()).status).toBe(200)
    // the recount it started is the shutdown's to wait for…
    expect(kept).toHaveLength(1)
    await server.stop()
    // …which stopped it (its claim given up) or saw it end (its figures written): no claim left
    const row = () =>
      db()
        .db.selectFrom('campaign_reach')
        .select(['refreshing_since', 'computed_at'])
        .where('campaign_id', '=', k.id)
        .executeTakeFirstOrThrow()
    expect((await row()).refreshing_since).toBeNull()
    const { computed_at } = await row()
    // a view once the server is stopping starts no recount, however stale the figures
    at.advance(600_000)
    expect((await page()).status).toBe(200)
    expect(kept).toHaveLength(1)
    expect(await row()).toEqual({ refreshing_since: null, computed_at })
  })
})
