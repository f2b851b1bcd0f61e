/**
 * The console's ECharts holds every part its pages draw with: each chart of 概览, 留存与分层,
 * 邀请裂变 and a campaign's report on a seeded community is rendered by ECharts (server-side, SVG)
 * with the console's parts alone (assets/echarts-parts.ts), and ECharts says nothing — a chart or component missing from
 * the parts makes it say "… is used but not imported" and draw nothing of it. And the assets go
 * out compressed to the clients that accept it.
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { init, use } from 'echarts/core'
import { SVGRenderer } from 'echarts/renderers'
import type { Hono } from 'hono'
import { afterEach, beforeAll, expect, it, vi } from 'vitest'
import {
  chartsOf,
  consoleTestApp,
  dispatchDue,
  manualClock,
  seedAnalytics,
  seedInvitesAndSegments,
  seedOperators,
  signIn,
} from '../../test/console-kit.js'
import { forEachDatabase } from '../../test/databases.js'
import { placeInSegment } from '../../test/segment-fixtures.js'
import { SAFE_ACCOUNT } from '../../test/server.js'
import { changeCampaign, createCampaign } from '../admin/actions/campaign-actions.js'
import { localDay } from '../community/community-time.js'
import { CONSOLE_ECHARTS } from './assets/echarts-parts.js'
import { assetUrl, findAsset, preferredCoding } from './assets.js'

use([...CONSOLE_ECHARTS, SVGRenderer])

const appid = SAFE_ACCOUNT.appid

forEachDatabase('console charts', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  let cookie = ''
  let report = ''

  beforeAll(async () => {
    const now = clock.now()
    const today = localDay(now, 'Asia/Shanghai')
    await seedOperators(db().db, now)
    await seedAnalytics(db().db, appid, today)
    await seedInvitesAndSegments(db().db, appid, today)
    app = consoleTestApp(db().db, clock)
    cookie = (await signIn(app, 'viewer1')).cookie
    // A campaign with a push enqueued, so that its report draws its funnel.
    const member = await db()
      .db.insertInto('members')
      .values({ appid, openid: 'o_chart', subscribed: true, first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    await placeInSegment(db().db, appid, [member.id], 'at_risk')
    const deps = { db: db().db, clock }
    const campaign = await createCampaign(
      deps,
      { name: 'op1' },
      {
        appid,
        name: '图表',
        audience: { segment: 'at_risk' },
        template: { template_id: 'TPL_RECALL', data: { thing1: { value: '回来' } } },
        schedule: { at: '2026-11-20T02:00:00Z' },
        conversionDays: 5,
      },
    )
    await changeCampaign(deps, { name: 'op1' }, { appid, id: campaign.id, move: 'schedule' })
    await dispatchDue(db().db, now)
    report = `/console/campaigns/${campaign.id}`
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it("renders every chart of the pages with charts with the console's ECharts parts alone", async () => {
    const said: unknown[][] = []
    for (const level of ['error', 'warn', 'log'] as const)
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => said.push(args))
    const drawn: string[] = []
    for (const path of ['/console', '/console/retention', '/console/invites', report]) {
      const res = await app.request(path, { headers: { cookie } })
      expect(res.status, path).toBe(200)
      const charts = chartsOf(await res.text())
      expect(charts.length, path).toBeGreaterThan(0)
      for (const [id, option] of charts) {
        const chart = init(null, null, { renderer: 'svg', ssr: true, width: 600, height: 300 })
        chart.setOption(option)
        const svg = chart.renderToSVGString()
        chart.dispose()
        expect(svg.length, id).toBeGreaterThan(1000)
        drawn.push(id)
      }
    }
    expect(said).toEqual([])
    // The pages' charts: lines, bars, heat maps, a Sankey and a funnel.
    expect(drawn).toEqual(
      expect.arrayContaining(['chart-cohorts', 'chart-ltv', 'chart-segments', 'chart-flow']),
    )
    expect(drawn).toEqual(expect.arrayContaining(['chart-funnel', 'chart-k']))
    expect(drawn.length).toBeGreaterThanOrEqual(8)
  })

  it('serves the console assets in brotli or gzip to the clients that accept it, the same bytes', async () => {
    const url = assetUrl('echarts', 'js')
    const asset = findAsset(url.split('/').at(-1)!)!
    const decode = { br: brotliDecompressSync, gzip: gunzipSync }
    expect(asset.body).toContain('Licensed to the Apache Software Foundation')
    // Each coding twice: the bytes kept for it are not used up by the first response.
    for (const coding of ['br', 'br', 'gzip', 'gzip', undefined] as const) {
      const res = await app.request(url, { headers: coding ? { 'accept-encoding': coding } : {} })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-encoding')).toBe(coding ?? null)
      expect(res.headers.get('vary')).toBe('accept-encoding')
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
      const bytes = Buffer.from(await res.arrayBuffer())
      const text = (coding ? decode[coding](bytes) : bytes).toString('utf8')
      expect(text === asset.body, `${coding ?? 'identity'} reads back as the asset`).toBe(true)
      if (coding) expect(bytes.length).toBeLessThan(asset.body.length / 2)
    }
  })

  it('sends a page in gzip to a client that accepts it (on Node; on Workers the edge compresses)', async () => {
    const plain = await app.request('/console/invites', { headers: { cookie } })
    const zipped = await app.request('/console/invites', {
      headers: { cookie, 'accept-encoding': 'gzip, deflate, br' },
    })
    expect(plain.headers.get('content-encoding')).toBeNull()
    expect(zipped.headers.get('content-encoding')).toBe('gzip')
    expect(zipped.headers.get('vary')).toContain('Accept-Encoding')
    const bytes = Buffer.from(await zipped.arrayBuffer())
    const html = gunzipSync(bytes).toString('utf8')
    expect(html).toContain('<h1>邀请裂变</h1>')
    expect(html.length).toBe((await plain.text()).length)
    expect(bytes.length).toBeLessThan(html.length / 2)
  })
})

it('weighs the codings a client accepts: brotli, else gzip, none refused or unknown', () => {
  expect(preferredCoding('gzip, deflate, br, zstd')).toBe('br')
  expect(preferredCoding('gzip, deflate')).toBe('gzip')
  expect(preferredCoding('br;q=0.5, gzip')).toBe('gzip')
  expect(preferredCoding('br;q=0, gzip;q=0')).toBeUndefined()
  expect(preferredCoding('*')).toBe('br')
  expect(preferredCoding('*, br;q=0')).toBe('gzip')
  expect(preferredCoding('identity')).toBeUndefined()
  expect(preferredCoding(undefined)).toBeUndefined()
})
