/**
 * The dispatcher side of `npm run bench:outbox`: enqueues N template messages, then drains them to
 * the sandbox API unthrottled, sampling its own RSS. Prints one JSON line.
 * Usage: tsx bench/outbox-child.ts baseline|pglite|postgres <url> <schema> <apiBase> <count> [mode appid]
 * `baseline` sends the same messages straight through the API client, without outbox or database.
 * Mode `enqueue` only enqueues (for `appid`) and exits; `drain` only drains `appid` — so several
 * dispatcher processes can drain one queue.
 */
import { systemClock } from '../src/clock.js'
import { drainOutbox, enqueue } from '../src/community/outbox.js'
import { databaseTokenStore } from '../src/community/token-store.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { silentLogger } from '../src/logger.js'
import { nodeFetch } from '../src/node-fetch.js'
import { accountClient } from '../src/wechat/api/account-client.js'
import { sendTemplateMessage } from '../src/wechat/api/messages.js'

const [kind, url, schema, apiBase, countArg, mode = 'both', appidArg, startAtArg] =
  process.argv.slice(2) as [string, string, string, string, string, string?, string?, string?]
const count = Number(countArg)
const db = kind === 'postgres' ? postgresDatabase(url, { schema, max: 10 }) : await pgliteDatabase()
if (mode !== 'drain') await migrateToLatest(db)
const appid = appidArg ?? `wxbench${kind[0]}${Date.now().toString().slice(-9)}`
const payload = { template_id: 'TPL_BENCH', data: { keyword1: { value: '基准测试' } } }
for (let i = 0; kind !== 'baseline' && mode !== 'drain' && i < count; i += 5000) {
  const chunk = Array.from({ length: Math.min(5000, count - i) }, (_, j) => ({
    appid,
    source: 'bench',
    openid: `o_bench_${i + j}`,
    kind: 'template' as const,
    payload,
  }))
  await enqueue(db, chunk, new Date())
}
if (mode === 'enqueue') {
  await db.destroy()
  process.exit(0)
}
const api = accountClient({
  tokenStore: databaseTokenStore(db, systemClock),
  appid,
  secret: 'bench',
  baseUrl: apiBase,
  mode: 'stable',
  clock: systemClock,
  logger: silentLogger,
  fetch: nodeFetch,
})
global.gc?.()
// Several drainers start together (epoch ms), once each has loaded and connected.
if (startAtArg)
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAtArg) - Date.now())))
const rssBefore = process.memoryUsage().rss
let rssPeak = rssBefore
const sampler = setInterval(() => {
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
}, 50)
const started = performance.now()
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64)
let summary = { sent: 0 }
if (kind === 'baseline') {
  // The same sends straight through the API client: no outbox, no database.
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++
        await sendTemplateMessage(api, {
          ...payload,
          touser: `o_base_${i}`,
          client_msg_id: `b${i}`,
        })
        summary.sent++
      }
    }),
  )
} else {
  summary = await drainOutbox({
    db,
    api,
    appid,
    clock: systemClock,
    logger: silentLogger,
    timeZone: 'Asia/Shanghai',
    rate: { perSecond: 0, burst: 1 },
    batchSize: Number(process.env.BENCH_BATCH ?? 1000),
    concurrency,
  })
}
const seconds = (performance.now() - started) / 1000
clearInterval(sampler)
rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
console.log(
  JSON.stringify({
    kind,
    endedAt: Date.now(),
    sent: summary.sent,
    seconds: Number(seconds.toFixed(2)),
    sendsPerSecond: Math.round(summary.sent / seconds),
    rssBeforeMB: Math.round(rssBefore / 2 ** 20),
    rssPeakMB: Math.round(rssPeak / 2 ** 20),
    rssGrowthMB: Math.round((rssPeak - rssBefore) / 2 ** 20),
  }),
)
await db.destroy()
