/**
 * A console page's first load on a phone's network, as an operator opens it: Debian's Chromium
 * (playwright-core) with its network throttled (Chrome's "Slow 4G" and "Fast 4G" profiles, and not
 * throttled) and its
 * CPU slowed 4 × (as Lighthouse's mobile runs), a new profile each load (nothing cached), until
 * every chart on the page is drawn. Two ways of serving the same pages, alternated load by load:
 *   - before (the baseline): as the console served them until this change — ECharts complete
 *     (echarts.min.js, 1.1 MB) and nothing compressed. A proxy in front of the app drops the
 *     browser's Accept-Encoding and points the page's ECharts at the complete build;
 *   - now: the app as it is — the console's own ECharts (only the parts its pages draw with),
 *     assets in brotli, pages in gzip.
 * Prints per page and profile the median time to the charts drawn and the bytes transferred, and
 * now ÷ before. The server is the app on an in-memory PGlite with the test kits' seeded community.
 *
 *   npm run bench:console-load
 * Env: BENCH_ROUNDS (5 loads of each way per page and profile).
 */
import { readFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { localDay } from '../src/community/community-time.js'
import { assetUrl } from '../src/console/assets.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import { launchChromium } from '../test/chromium.js'
import {
  passwordOf,
  seedAnalytics,
  seedInvitesAndSegments,
  seedOperators,
} from '../test/console-kit.js'
import { SAFE_ACCOUNT, startServer } from '../test/server.js'
import { envNumber } from './env-number.js'

const rounds = envNumber('BENCH_ROUNDS', 5, { min: 1, integer: true })
const PAGES = ['/console', '/console/retention']
/**
 * Chrome DevTools' throttling presets, as DevTools sets them (front_end/core/sdk/NetworkManager.ts:
 * the nominal rates × 0.9, the latency × 3.75 and × 2.75; bytes/s and ms), and none.
 */
const PROFILES = [
  {
    name: 'Slow 4G',
    latency: 150 * 3.75,
    down: ((1.6e6 / 8) * 0.9) | 0,
    up: ((750e3 / 8) * 0.9) | 0,
  },
  { name: 'Fast 4G', latency: 60 * 2.75, down: ((9e6 / 8) * 0.9) | 0, up: ((1.5e6 / 8) * 0.9) | 0 },
  // Loopback, not throttled: what is left is the phone's CPU (parsing, drawing).
  { name: 'not throttled', latency: 0, down: -1, up: -1 },
]
const CPU_SLOWDOWN = 4

const db = await pgliteDatabase()
await migrateToLatest(db)
const now = new Date()
await seedOperators(db, now)
await seedAnalytics(db, SAFE_ACCOUNT.appid, localDay(now, 'Asia/Shanghai'))
await seedInvitesAndSegments(db, SAFE_ACCOUNT.appid, localDay(now, 'Asia/Shanghai'))
const app = await startServer(db)

// The baseline: the same app behind a proxy that asks it for nothing compressed and hands the
// page the complete ECharts build in place of the console's.
const complete = readFileSync(createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js'))
const ours = assetUrl('echarts', 'js')
const target = new URL(app.url)
const before = createServer((req, res) => {
  if (req.url === '/complete-echarts.js') {
    res.writeHead(200, {
      'content-type': 'text/javascript; charset=utf-8',
      'content-length': complete.length,
    })
    res.end(complete)
    return
  }
  const headers = { ...req.headers, host: target.host }
  delete headers['accept-encoding']
  const upstream = request(
    { host: target.hostname, port: target.port, path: req.url, method: req.method, headers },
    (answer) => {
      const html = String(answer.headers['content-type']).startsWith('text/html')
      if (!html) {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      answer.on('data', (c: Buffer) => chunks.push(c))
      answer.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').replace(ours, '/complete-echarts.js')
        const { 'content-length': _, ...rest } = answer.headers
        res.writeHead(answer.statusCode ?? 502, {
          ...rest,
          'content-length': Buffer.byteLength(body),
        })
        res.end(body)
      })
    },
  )
  req.pipe(upstream)
})
await new Promise<void>((resolve) => before.listen(0, '127.0.0.1', resolve))
const beforeUrl = `http://127.0.0.1:${(before.address() as AddressInfo).port}`

const browser = await launchChromium()

/** A signed-in session on `base` (cookies only: each load starts with an empty cache). */
async function session(base: string) {
  const context = await browser.newContext({ locale: 'zh-CN' })
  const page = await context.newPage()
  await page.goto(`${base}/console/login`)
  await page.getByLabel('用户名').fill('op1')
  await page.getByLabel('密码').fill(passwordOf('op1'))
  await page.getByLabel('密码').press('Enter')
  await page.waitForURL(`${base}/console`)
  const state = await context.storageState()
  await context.close()
  return state
}

/** One cold load of `path` under `profile`: ms until every chart is drawn, and bytes received. */
async function load(
  base: string,
  state: Awaited<ReturnType<typeof session>>,
  path: string,
  profile: (typeof PROFILES)[number],
) {
  const context = await browser.newContext({
    locale: 'zh-CN',
    viewport: { width: 390, height: 844 },
    storageState: state,
  })
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: profile.latency,
    downloadThroughput: profile.down,
    uploadThroughput: profile.up,
  })
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: CPU_SLOWDOWN })
  let bytes = 0
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength
  })
  const started = performance.now()
  await page.goto(`${base}${path}`)
  await page.waitForFunction(() => {
    const charts = document.querySelectorAll('[data-chart]')
    return (
      charts.length > 0 &&
      document.querySelectorAll('[data-chart][data-ready="1"]').length === charts.length
    )
  })
  const ms = performance.now() - started
  await context.close()
  return { ms, bytes }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const ways = [
  { name: 'before', base: beforeUrl, state: await session(beforeUrl) },
  { name: 'now', base: app.url, state: await session(app.url) },
]
console.log(
  `${rounds} cold loads of each way, alternated; CPU ${CPU_SLOWDOWN} × slower; ECharts complete ${complete.length} bytes`,
)
console.log(
  '\n| page | network | before: ms to charts drawn | now | now ÷ before | before: KB received | now | now ÷ before |',
)
console.log('|---|---|---:|---:|---:|---:|---:|---:|')
for (const path of PAGES)
  for (const profile of PROFILES) {
    const runs = ways.map(() => ({ ms: [] as number[], bytes: [] as number[] }))
    for (let r = 0; r < rounds; r++) {
      // Alternated, the first way first in even rounds: neither always runs second.
      const order = r % 2 === 0 ? [0, 1] : [1, 0]
      for (const i of order) {
        const { ms, bytes } = await load(ways[i]!.base, ways[i]!.state, path, profile)
        runs[i]!.ms.push(ms)
        runs[i]!.bytes.push(bytes)
      }
    }
    const [b, n] = runs.map((x) => ({ ms: median(x.ms), kb: median(x.bytes) / 1024 }))
    console.log(
      `| ${path} | ${profile.name} | ${b!.ms.toFixed(0)} | ${n!.ms.toFixed(0)} | ${(n!.ms / b!.ms).toFixed(2)} | ${b!.kb.toFixed(0)} | ${n!.kb.toFixed(0)} | ${(n!.kb / b!.kb).toFixed(2)} |`,
    )
  }
await browser.close()
before.close()
await app.close()
await db.destroy()
