/**
 * 邀请裂变 over `app.request()` on a seeded community: the funnel, totals, top inviters, K trend
 * and chains carry what inviteFunnel, inviteReport, readSeries and the chain reads answer; an
 * inviter's tree stops at five levels; bad periods are refused (400); an empty community renders.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import {
  chartOf,
  consoleTestApp,
  manualClock,
  seedAnalytics,
  seedInvitesAndSegments,
  seedOperators,
  signIn,
} from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { PLAIN_ACCOUNT, SAFE_ACCOUNT } from '../../../test/server.js'
import { inviteTree, longestInviteChains } from '../../admin/reads/invite-chains.js'
import { inviteFunnel } from '../../admin/reads/invite-funnel.js'
import { liveToday, readSeries } from '../../analytics/series.js'
import { addDays, localDay } from '../../community/community-time.js'
import { inviteReport } from '../../community/invite-report.js'
import { consoleFormat } from '../format.js'

const appid = SAFE_ACCOUNT.appid
const fmt = consoleFormat('zh-CN', 'Asia/Shanghai')
const timeZone = 'Asia/Shanghai'

forEachDatabase('console: 邀请裂变', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  const now = clock.now()
  const today = localDay(now, timeZone)
  let app: Hono
  let cookie = ''
  let openids: string[] = []
  const get = (path: string) => app.request(path, { headers: { cookie } })

  beforeAll(async () => {
    await seedOperators(db().db, now)
    await seedAnalytics(db().db, appid, today)
    openids = await seedInvitesAndSegments(db().db, appid, today)
    app = consoleTestApp(db().db, clock)
    cookie = (await signIn(app, 'viewer1')).cookie
  })

  it('draws the funnel, totals, top inviters, the K trend and the longest chains', async () => {
    const res = await get('/console/invites')
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html.length).toBeLessThan(100_000)
    expect(html).toContain('<h1>邀请裂变</h1>')
    const period = { from: addDays(today, -29), to: today }
    const live = liveToday(db().db)
    const funnel = await inviteFunnel(db().db, { appid, ...period, now, timeZone, live })
    expect(funnel.map((s) => s.stage)).toEqual([
      'qr_issued',
      'follows',
      'attributed',
      'qualified',
      'retained',
    ])
    const chart = chartOf(html, 'chart-funnel').series[0]
    expect(chart.type).toBe('funnel')
    expect(chart.data.map((d: { value: number }) => d.value)).toEqual(funnel.map((s) => s.members))
    expect(chart.data[0].name).toBe('发出邀请码')

    const report = await inviteReport(db().db, { appid, ...period, timeZone, now, live })
    expect(report.totals.invites).toBe(9)
    expect(report.totals.k).not.toBeNull()
    expect(html).toContain(`<td data-label="统计区间" class="num">${report.totals.k}</td>`)
    expect(html).toContain(fmt.percent(report.totals.shareRate!))
    expect(html).toContain(fmt.percent(report.totals.conversionRate!))
    expect(report.topInviters[0]).toEqual({ openid: openids[0], invites: 3, conversions: 2 })
    const top = html.slice(html.indexOf('id="top"'), html.indexOf('id="chains"'))
    expect(top.match(/<tr>/g)?.length).toBe(report.topInviters.length + 1)
    for (const r of report.topInviters) expect(top).toContain(r.openid)

    const k = await readSeries(db().db, {
      appid,
      metric: 'invites.k_factor',
      from: addDays(today, -30),
      to: addDays(today, -1),
      granularity: 'day',
      now,
      timeZone,
      live,
    })
    const trend = chartOf(html, 'chart-k')
    expect(trend.series).toHaveLength(4)
    expect(trend.series[0].data).toEqual(
      k.points.map((p) => (p.value === null ? null : Math.round(p.value * 10_000) / 10_000)),
    )
    expect(trend.series[3].yAxisIndex).toBe(1)
    // K, c and conv are ratios: the left axis in percent, like the console's other rates; the
    // headings say the days each covers (the summary includes today so far, the trend ends
    // yesterday)
    expect(html).toMatch(/data-chart="chart-k" data-percent="1"/)
    expect(html).toContain(`区间汇总（${period.from} 至今天此刻，今天仍在累计）`)
    expect(html).toContain(
      `K 因子趋势（${addDays(today, -30)} 至 ${addDays(today, -1)}，不含今天）`,
    )
    expect(html).toContain('会使它超过 100%')
    const ninety = chartOf(await (await get('/console/invites?days=90')).text(), 'chart-k')
    expect(ninety.xAxis.data).toHaveLength(90)

    const chains = await longestInviteChains(db().db, { appid })
    expect(chains).toEqual([
      { openid: openids[0], name: '老张', depth: 5, members: 7 },
      { openid: openids[9], name: null, depth: 1, members: 1 },
    ])
    expect(html).toContain('>老张</a>')
  })

  it("shows an inviter's tree down five levels, and an unknown inviter's empty tree", async () => {
    const html = await (await get(`/console/invites?inviter=${openids[0]}`)).text()
    const tree = await inviteTree(db().db, { appid, openid: openids[0]! })
    expect(tree?.members).toBe(7)
    expect(html).toContain('老张（o_seed_m0） 的邀请树')
    for (const i of [1, 2, 3, 4, 5, 7, 8]) expect(html).toContain(`<li>${openids[i]}`)
    expect(html).not.toContain(`<li>${openids[6]}`)
    expect(html).toContain('共 7 人（最多 5 层）')
    const other = await (await get('/console/invites?inviter=o_nobody')).text()
    expect(other).toContain('没有这个会员，或 TA 还没有邀请过人')
  })

  it('refuses a bad period or trend with a 400 page', async () => {
    for (const [q, zh, en] of [
      ['from=2026-13-01', '日期须为 YYYY-MM-DD', 'a date is YYYY-MM-DD'],
      [
        `from=${today}&to=${addDays(today, -1)}`,
        '开始日期不能晚于结束日期',
        'the start date is after the end date',
      ],
      [`from=${addDays(today, -400)}`, '统计区间最长 366 天', 'the period is at most 366 days'],
      ['days=7', '趋势天数须为 30 或 90', 'the trend covers 30 or 90 days'],
      [
        `inviter=${'o'.repeat(129)}`,
        '邀请人 openid 最多 128 个字符',
        'an inviter openid is at most 128 characters',
      ],
    ]) {
      const res = await get(`/console/invites?${q}`)
      expect(res.status, q).toBe(400)
      const alert = (html: string) => /<p role="alert">([^<]*)<\/p>/.exec(html)?.[1]
      expect(alert(await res.text())).toBe(`输入有误：${zh}`)
      const english = await get(`/console/invites?${q}&lang=en`)
      expect(alert(await english.text())).toBe(`Invalid input: ${en}`)
    }
    // Empty fields are "not given": the default period.
    expect((await get('/console/invites?from=&to=&days=30')).status).toBe(200)
  })

  it('renders an empty community', async () => {
    const res = await get(`/console/invites?appid=${PLAIN_ACCOUNT.appid}`)
    expect(res.status).toBe(200)
    const html = await res.text()
    // never built: the 30 days before the last week read live have no figures — unknown, not 0
    expect(html).toContain('这个区间内有日期尚未统计')
    expect(html).not.toContain('data-chart="chart-funnel"')
    const week = await get(
      `/console/invites?appid=${PLAIN_ACCOUNT.appid}&from=${addDays(today, -6)}&to=${today}`,
    )
    expect(await week.text()).toContain('这个区间内没有邀请数据')
    expect(html).toContain('这个区间内没有人邀请')
    expect(html).toContain('还没有邀请链')
    // No active members, so no K: gaps (null), not 0
    expect(chartOf(html, 'chart-k').series[0].data.every((v: number | null) => v === null)).toBe(
      true,
    )
  })
})
