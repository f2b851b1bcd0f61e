/**
 * The webhook on workerd (wrangler's local runtime, the same `src/worker.ts` as `npm run
 * dev:worker`) vs Node, in one run, on one fresh PostgreSQL database: the same safe-mode text push
 * (fresh MsgIds, prepared before the clock starts, `BENCH_MEMBERS` senders), `BENCH_PUSHES` of them
 * with `BENCH_CONCURRENCY` in flight, to each target; reported as pushes/s, p50/p99 and the ratio
 * workerd / Node. Node serves `createApp` in this process (as test/server.ts does); workerd runs
 * in its own process. Local workerd is not Cloudflare's edge: the ratio says what the Workers
 * runtime and its per-request connections cost on this machine, not production latency.
 *
 *   npm run bench:worker
 *   BENCH_PUSHES=2000 BENCH_CONCURRENCY=20 npm run bench:worker
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_TEXT (帮助).
 */
import { createRouter } from '../handlers/index.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { silentLogger } from '../src/logger.js'
import { createPusher, nextMsgId, type PreparedPush } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT, startServer, testConfig } from '../test/server.js'
import { workerdDatabase, workerEnvironment } from '../test/workerd/workerd-kit.js'

const pushes = Number(process.env.BENCH_PUSHES ?? 1000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 10)
const members = Number(process.env.BENCH_MEMBERS ?? 200)
const text = process.env.BENCH_TEXT ?? '帮助'
const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function prepare(base: string, count: number): Promise<PreparedPush[]> {
  const pusher = createPusher({
    url: `${base}/wechat/${SAFE_ACCOUNT.appid}`,
    account: SAFE_ACCOUNT,
  })
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      pusher.prepare({
        FromUserName: `o_bench_${i % members}`,
        CreateTime: Math.floor(Date.now() / 1000),
        MsgType: 'text',
        Content: text,
        MsgId: BigInt(nextMsgId()),
      }),
    ),
  )
}

async function load(prepared: PreparedPush[]) {
  const latencies: number[] = []
  let failed = 0
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < prepared.length) {
        const p = prepared[next++]!
        const t = performance.now()
        const res = await fetch(p.url, {
          method: 'POST',
          headers: { 'content-type': p.contentType },
          body: p.body,
        })
        await res.text()
        latencies.push(performance.now() - t)
        if (res.status !== 200) failed++
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
  return { rate: prepared.length / seconds, p50: at(0.5), p99: at(0.99), failed }
}

const database = await workerdDatabase(serverUrl)
const db = postgresDatabase(database.url, { max: 10 })
try {
  await migrateToLatest(db)
  const node = await startServer(db, {
    config: testConfig(),
    router: createRouter(),
    logger: silentLogger,
  })
  const { unstable_startWorker } = await import('wrangler')
  const worker = await unstable_startWorker(
    workerEnvironment({
      databaseUrl: database.url,
      vars: {
        LOG_LEVEL: 'error',
      },
    }),
  )
  await worker.ready
  const workerBase = (await worker.url).href.replace(/\/$/, '')
  try {
    // Warm both (JIT, the isolate, the members), then measure.
    await load(await prepare(node.url, members))
    await load(await prepare(workerBase, members))
    const nodeRun = await load(await prepare(node.url, pushes))
    const workerRun = await load(await prepare(workerBase, pushes))
    const row = (name: string, r: Awaited<ReturnType<typeof load>>) =>
      `${name.padEnd(8)} ${r.rate.toFixed(0).padStart(6)} pushes/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  failed ${r.failed}`
    console.log(`${pushes} safe-mode "${text}" pushes, ${concurrency} in flight, PostgreSQL`)
    console.log(row('node', nodeRun))
    console.log(row('workerd', workerRun))
    console.log(`ratio workerd / node: ${(workerRun.rate / nodeRun.rate).toFixed(2)}`)
  } finally {
    await worker.dispose()
    await node.close()
  }
} finally {
  await db.destroy()
  await database.drop()
}
