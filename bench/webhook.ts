/**
 * Webhook throughput, measured as ratios within one run (README → bench/README.md):
 *   (a) Hono hello-world POST                                   — the baseline
 *   (b) safe-mode text push → decrypt, parse, route, encrypted reply; dedupe and members in memory
 *   (c) the same with the database dedupe and member upsert: PGlite, and PostgreSQL if reachable
 * Every push has a fresh MsgId (prepared before the clock starts), so nothing is served from dedupe.
 *
 *   npm run bench                    # 10 s per target, 50 connections
 *   BENCH_SECONDS=5 npm run bench
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import pg from 'pg'
import { createPusher, nextMsgId, type PreparedPush } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT } from '../test/server.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function start(scenario: string, env: Record<string, string> = {}) {
  const child = spawn('npx', ['tsx', 'bench/server.ts', scenario], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`${scenario} server exited with ${code}`)))
  })
  return { child, port: (JSON.parse(line) as { port: number }).port }
}

function stop(child: ChildProcess) {
  return new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

async function prepare(port: number, count: number): Promise<PreparedPush[]> {
  const wx = createPusher({ url: `http://127.0.0.1:${port}/wechat`, account: SAFE_ACCOUNT })
  const out: PreparedPush[] = []
  for (let i = 0; i < count; i++) {
    out.push(
      await wx.prepare({
        FromUserName: `o_bench_${i % 5000}`,
        CreateTime: Math.floor(Date.now() / 1000),
        MsgType: 'text',
        Content: '帮助',
        MsgId: BigInt(nextMsgId()),
      }),
    )
  }
  return out
}

async function load(port: number, pushes: PreparedPush[] | null, duration = seconds) {
  let i = 0
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration,
    requests: [
      {
        method: 'POST',
        path: '/wechat',
        headers: { 'content-type': 'text/xml' },
        body: 'hello',
        setupRequest: (req) => {
          if (!pushes) return req
          const p = pushes[i++ % pushes.length]!
          return { ...req, path: p.url.slice(p.url.indexOf('/wechat')), body: p.body }
        },
      },
    ],
  })
  const bad = result.non2xx + result.errors + result.timeouts
  if (pushes && i > pushes.length)
    console.warn(`  note: ${i - pushes.length} pushes repeated a MsgId`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, bad }
}

async function pgReachable() {
  const client = new pg.Client({ connectionString: pgUrl })
  try {
    await client.connect()
    return client
  } catch {
    return undefined
  }
}

const rows: { name: string; rps: number; p50: number; p99: number; bad: number }[] = []
const targets: [string, string, Record<string, string>][] = [
  ['(a) Hono hello-world', 'hello', {}],
  ['(b) safe-mode push, encrypted reply, no DB', 'memory', {}],
  ['(c) same + DB dedupe and member upsert, PGlite', 'pglite', {}],
]
const admin = await pgReachable()
const schema = `bench_${Date.now().toString(36)}`
if (admin) {
  await admin.query(`create schema ${schema}`)
  targets.push([
    '(c) same + DB dedupe and member upsert, PostgreSQL',
    'postgres',
    { BENCH_SCHEMA: schema },
  ])
}

for (const [name, scenario, env] of targets) {
  const { child, port } = await start(scenario, env)
  const pushes = scenario === 'hello' ? null : await prepare(port, 6000 * seconds)
  await load(port, pushes ? pushes.slice(0, 2000) : null, 2) // warm-up on the first 2000
  const r = await load(port, pushes ? pushes.slice(2000) : null)
  rows.push({ name, ...r })
  console.log(
    `${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx/errors ${r.bad}`,
  )
  await stop(child)
}
if (admin) {
  await admin.query(`drop schema ${schema} cascade`)
  await admin.end()
}

const base = rows[0]!.rps
console.log(
  `\n| target | req/s | × (a) | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|---:|`,
)
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${r.bad} |`,
  )
}
