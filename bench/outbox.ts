/**
 * Outbox dispatch throughput (issue target: ≥ 5,000 sends/s unthrottled, RSS growth ≤ 50 MB):
 * 100k template messages drained from PostgreSQL (and PGlite) to the sandbox WeChat API, which runs
 * in this process while the dispatcher runs in a child whose RSS is sampled.
 *
 *   npm run bench:outbox               # 100 000 items
 *   BENCH_ITEMS=20000 npm run bench:outbox
 */
import { spawn } from 'node:child_process'
import pg from 'pg'
import { startSandboxApi } from '../src/sandbox/wechat-api-server.js'

const items = Number(process.env.BENCH_ITEMS ?? 100_000)
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const wx = await startSandboxApi({ keepSent: false })

function child(kind: string, schema: string, extra: string[] = []) {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      'bench/outbox-child.ts',
      kind,
      pgUrl,
      schema,
      wx.url,
      String(items),
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
  )
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
  })
  return new Promise<Record<string, number>>((resolve) =>
    child.once('exit', () => resolve(out.trim() ? JSON.parse(out.trim().split('\n').at(-1)!) : {})),
  )
}

async function run(kind: 'baseline' | 'postgres' | 'pglite', schema: string) {
  const before = wx.sentCount()
  const result = await child(kind, schema)
  return { ...result, kind: kind as string, deliveredBySandbox: wx.sentCount() - before } as Row
}

type Row = {
  kind: string
  seconds: number
  sendsPerSecond: number
  rssBeforeMB: number
  rssPeakMB: number
  rssGrowthMB: number
  deliveredBySandbox: number
}

/** Two dispatcher processes draining one queue on PostgreSQL: wall time for both. */
async function runTwo(schema: string) {
  const appid = `wxbenchtwo${Date.now().toString().slice(-8)}`
  await child('postgres', schema, ['enqueue', appid])
  const before = wx.sentCount()
  // Both start draining at the same moment, after loading (process start-up is not measured).
  const startAt = Date.now() + 5000
  const results = await Promise.all(
    [1, 2].map(() => child('postgres', schema, ['drain', appid, String(startAt)])),
  )
  const seconds = (Math.max(...results.map((r) => r.endedAt ?? 0)) - startAt) / 1000
  const delivered = wx.sentCount() - before
  return {
    kind: 'two dispatchers on PostgreSQL',
    seconds: Number(seconds.toFixed(2)),
    sendsPerSecond: Math.round(delivered / seconds),
    rssBeforeMB: Math.max(...results.map((r) => r.rssBeforeMB ?? 0)),
    rssPeakMB: Math.max(...results.map((r) => r.rssPeakMB ?? 0)),
    rssGrowthMB: Math.max(...results.map((r) => r.rssGrowthMB ?? 0)),
    deliveredBySandbox: delivered,
  }
}

const rows: Row[] = [await run('baseline', '')]
const admin = new pg.Client({ connectionString: pgUrl })
const pgUp = await admin.connect().then(
  () => true,
  () => false,
)
if (pgUp) {
  const schema = `bench_outbox_${Date.now().toString(36)}`
  await admin.query(`create schema ${schema}`)
  try {
    rows.push(await run('postgres', schema))
    if (process.env.BENCH_TWO !== '0') rows.push(await runTwo(schema))
  } finally {
    await admin.query(`drop schema ${schema} cascade`)
    await admin.end()
  }
}
rows.push(await run('pglite', ''))
await wx.close()

console.log(
  `\n| dispatcher | items | seconds | sends/s | × baseline | RSS before MB | RSS peak MB | growth MB |\n|---|---:|---:|---:|---:|---:|---:|---:|`,
)
for (const r of rows) {
  console.log(
    `| ${r.kind} | ${r.deliveredBySandbox} | ${r.seconds} | ${r.sendsPerSecond} | ${(r.sendsPerSecond / rows[0]!.sendsPerSecond).toFixed(2)} | ${r.rssBeforeMB} | ${r.rssPeakMB} | ${r.rssGrowthMB} |`,
  )
}
