/**
 * 留存与分层 over `app.request()` on a seeded community: the heat maps, d1/d7/d30, segment sizes
 * and the Sankey carry what cohortTriangle, ltvTriangle, segmentCounts and segmentFlow answer; the
 * filters, bad input (400), the CSV downloads under the session, and an empty community.
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
import { cohortFilterQuery } from '../../admin/reads/cohort-filter.js'
import { segmentFlow } from '../../admin/reads/segment-flow.js'
import { ltvTriangle } from '../../analytics/cohort-ltv.js'
import { cohortTriangle } from '../../analytics/cohorts.js'
import { addDays, localDay } from '../../community/community-time.js'
import { segmentCounts } from '../../community/segments.js'
import { consoleFormat } from '../format.js'

const appid = SAFE_ACCOUNT.appid
const fmt = consoleFormat('zh-CN', 'Asia/Shanghai')

forEachDatabase('console: 留存与分层', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  const today = localDay(clock.now(), 'Asia/Shanghai')
  let app: Hono
  let cookie = ''
  const get = (path: string, withCookie = cookie) =>
    app.request(path, { headers: withCookie ? { cookie: withCookie } : {} })
  const defaults = { grain: 'day', source: '', segment: '' } as const

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    await seedAnalytics(db().db, appid, today)
    await seedInvitesAndSegments(db().db, appid, today)
    app = consoleTestApp(db().db, clock)
    cookie = (await signIn(app, 'viewer1')).cookie
  })

  it('draws the triangle, d1/d7/d30 beside the plan, LTV, segment sizes and moves', async () => {
    const res = await get('/console/retention')
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html.length).toBeLessThan(100_000)
    expect(html).toContain('<h1>留存与分层</h1>')
    const triangle = await cohortTriangle(db().db, cohortFilterQuery(defaults, appid, today))
    expect(triangle.cohorts.length).toBe(30)
    const heat = chartOf(html, 'chart-cohorts')
    expect(heat.yAxis.data).toEqual(triangle.cohorts.map((r) => r.start.slice(5)))
    expect(heat.series[0].type).toBe('heatmap')
    expect(heat.series[0].data).toEqual(
      triangle.cohorts.flatMap((r, y) =>
        r.shares.flatMap((s, x) => (s === null ? [] : [[x, y, Math.round(s * 10_000) / 100]])),
      ),
    )
    for (const key of ['d1', 'd7', 'd30'] as const) {
      const f = triangle.summary[key]
      // d30: no cohort of the last 30 days is 30 days old yet.
      expect(f.share === null).toBe(key === 'd30')
      expect(html).toContain(f.share === null ? '—' : fmt.percent(f.share))
      expect(html).toContain(`${fmt.count(f.retained)} / ${fmt.count(f.size)}`)
    }
    for (const ref of ['25.0%', '15.0%', '8.0%']) expect(html).toContain(ref)

    const ltv = await ltvTriangle(db().db, { ...cohortFilterQuery(defaults, appid, today) })
    const ltvHeat = chartOf(html, 'chart-ltv')
    expect(ltvHeat.series[0].data).toEqual(
      ltv.cohorts.flatMap((r, y) =>
        r.perMemberFen.flatMap((v, x) => (v === null ? [] : [[x, y, Math.round(v) / 100]])),
      ),
    )
    expect(html).toContain(fmt.fen(ltv.summary.d7.perMemberFen!))
    expect(html).toContain(fmt.fen(ltv.summary.d7.revenueFen))
    expect(ltv.summary.d30.cohorts).toBe(0)
    const pooled = html.slice(html.indexOf('第 30 天</td>'), html.indexOf('第 60 天</td>'))
    expect(pooled).not.toContain('¥')

    const counts = await segmentCounts(db().db, appid)
    const bars = chartOf(html, 'chart-segments')
    expect(bars.series[0].data).toEqual(
      ['new', 'active', 'loyal', 'at_risk', 'dormant', 'churned'].map((s) => counts[s]),
    )
    expect(bars.xAxis.data[0]).toBe('新用户')

    const moves = await segmentFlow(db().db, { appid, day: addDays(today, -1) })
    expect(moves.length).toBe(4)
    const sankey = chartOf(html, 'chart-flow').series[0]
    expect(sankey.type).toBe('sankey')
    expect(
      sankey.links.map((l: { source: string; target: string; value: number }) => l.value),
    ).toEqual(moves.map((m) => m.members))
    // active>at_risk and at_risk>active: two columns of nodes, so no cycle for ECharts.
    for (const l of sankey.links) {
      expect(l.source).toMatch(/^原·/)
      expect(l.target).toMatch(/^现·/)
    }
    expect(sankey.links).toContainEqual({ source: '原·活跃', target: '现·流失风险', value: 2 })
    expect(sankey.links).toContainEqual({ source: '原·流失风险', target: '现·活跃', value: 1 })
  })

  it('filters by week, source and segment (LTV says it ignores the segment)', async () => {
    const html = await (await get('/console/retention?grain=week&source=invite')).text()
    const week = { ...defaults, grain: 'week', source: 'invite' } as const
    const triangle = await cohortTriangle(db().db, cohortFilterQuery(week, appid, today))
    expect(triangle.cohorts.length).toBeGreaterThan(0)
    expect(chartOf(html, 'chart-cohorts').yAxis.data).toEqual(
      triangle.cohorts.map((r) => r.start.slice(5)),
    )
    expect(html).toContain('<option value="invite" selected="">邀请</option>')
    expect(html).toContain('href="/console/retention/cohorts.csv?grain=week&amp;source=invite"')
    const seg = await (await get('/console/retention?segment=dormant')).text()
    expect(seg).toContain('这个范围内还没有留存队列数据')
    expect(seg).toContain('不受分层筛选影响')
    expect(seg).toContain('href="/console/retention/ltv.csv?grain=day"')
  })

  it('refuses a bad filter with a 400 page', async () => {
    for (const q of ['grain=month', 'source=ads', 'segment=vip']) {
      const res = await get(`/console/retention?${q}`)
      expect(res.status).toBe(400)
      expect(await res.text()).toContain('输入有误')
    }
  })

  it('downloads the triangles as CSV under the session, not without it', async () => {
    const res = await get('/console/retention/cohorts.csv?source=invite')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    const q = cohortFilterQuery({ ...defaults, source: 'invite' }, appid, today)
    const triangle = await cohortTriangle(db().db, q)
    const lines = (await res.text()).trim().split('\n')
    expect(lines[0]).toBe(
      ['cohort', 'size', ...Array.from({ length: 31 }, (_, k) => `age_${k}`)].join(','),
    )
    expect(lines.slice(1)).toEqual(
      triangle.cohorts.map((r) => [r.start, r.size, ...r.retained.map((x) => x ?? '')].join(',')),
    )
    const ltv = await get('/console/retention/ltv.csv?grain=week')
    expect(ltv.headers.get('content-disposition')).toMatch(/^attachment; filename="ltv-week-/)
    expect((await get('/console/retention/ltv.csv?grain=year')).status).toBe(400)
    const anonymous = await get('/console/retention/cohorts.csv', '')
    expect(anonymous.status).toBe(303)
    expect(anonymous.headers.get('location')).toBe('/console/login')
  })

  it('renders an empty community', async () => {
    const res = await get(`/console/retention?appid=${PLAIN_ACCOUNT.appid}`)
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html).toContain('这个范围内还没有留存队列数据')
    expect(html).toContain('这个范围内还没有 LTV 数据')
    expect(html).toContain('分层尚未计算')
    expect(html).toContain('这一天没有会员在分层之间移动')
    expect(html).toContain('尚未构建')
    expect(html).toContain(`name="appid" value="${PLAIN_ACCOUNT.appid}"`)
    const en = await (await get(`/console/retention?appid=${PLAIN_ACCOUNT.appid}&lang=en`)).text()
    expect(en).toContain('<h1>Retention &amp; segments</h1>')
  })
})
