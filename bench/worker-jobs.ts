/**
 * Long jobs on workerd (wrangler's local runtime, the same `src/worker.ts` as `npm run
 * dev:worker`): the segment recompute, then a campaign's enqueue to everyone, over `BENCH_MEMBERS`
 * members on PostgreSQL, one scheduled invocation after another until each is done. Per
 * invocation: its wall time (the `/cdn-cgi/handler/scheduled` call, which returns when the handler
 * has finished — database time included) and the CPU time the workerd process spent meanwhile
 * (utime + stime from /proc: the Worker's JavaScript, pg's protocol and the runtime — the
 * figure Cloudflare's CPU limit counts, plus the runtime's own overhead; the database's CPU is not
 * in it). Campaign pushes are held by quiet hours around now, so the drain sends nothing and the
 * figures are the jobs'. Local workerd is not Cloudflare's edge.
 *
 *   npm run bench:worker-jobs
 *   BENCH_MEMBERS=1000000 BENCH_BUDGET_MS=25000 npm run bench:worker-jobs
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_CHUNK_MEMBERS.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { sql } from 'kysely'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { startSandboxApi } from '../src/sandbox/wechat-api-server.js'
import { SAFE_ACCOUNT } from '../test/server.js'
import {
  dueTemplateCampaign,
  workerdDatabase,
  workerEnvironment,
} from '../test/workerd/workerd-kit.js'

const members = Number(process.env.BENCH_MEMBERS ?? 100_000)
const budgetMs = process.env.BENCH_BUDGET_MS ?? '25000'
const chunkMembers = process.env.BENCH_CHUNK_MEMBERS ?? '50000'
const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const SECRET = 'bench-secret'

/** CPU seconds (user + system) of this process's workerd descendants. */
function workerdCpuSeconds(): number {
  const procs = new Map<number, { ppid: number; comm: string; ticks: number }>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const comm = stat.slice(stat.indexOf('(') + 1, close)
      const f = stat.slice(close + 2).split(' ')
      procs.set(Number(name), { ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) })
    } catch {}
  }
  const mine = (pid: number): boolean => {
    for (let p = procs.get(pid)?.ppid; p && p > 1; p = procs.get(p)?.ppid)
      if (p === process.pid) return true
    return false
  }
  let ticks = 0
  for (const [pid, p] of procs) if (p.comm.includes('workerd') && mine(pid)) ticks += p.ticks
  return ticks / 100
}

/** Minutes after local midnight in Shanghai, as HH:MM. */
const shanghai = (at: Date) =>
  new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Asia/Shanghai',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(at)

const database = await workerdDatabase(serverUrl)
const db = postgresDatabase(database.url, { max: 4 })
const wx = await startSandboxApi({ accounts: { [SAFE_ACCOUNT.appid]: SECRET } })
try {
  await migrateToLatest(db)
  let t = performance.now()
  await sql`insert into members (appid, openid, subscribed, first_seen_at, subscribed_at,
      last_active_at, purchase_count)
    select ${SAFE_ACCOUNT.appid}, 'o_bench_' || i, i % 7 <> 0,
      now() - make_interval(days => i % 400),
      case when i % 3 = 0 then now() - make_interval(days => i % 300) end,
      case when i % 5 <> 0 then now() - make_interval(days => i % 150) end, i % 4
    from generate_series(1, ${members}) as i`.execute(db)
  await sql`analyze members`.execute(db)
  console.log(`${members} members inserted in ${((performance.now() - t) / 1000).toFixed(1)} s`)

  const { unstable_startWorker } = await import('wrangler')
  const now = new Date()
  const worker = await unstable_startWorker(
    workerEnvironment({
      databaseUrl: database.url,
      vars: {
        WECHAT_SECRET: SECRET,
        WECHAT_API_BASE: wx.url,
        WECHAT_TOKEN_MODE: 'stable',
        CAMPAIGN_CAP_HOURS: '0',
        // Campaign pushes wait for the end of these quiet hours: the drain has nothing due.
        QUIET_HOURS: `${shanghai(new Date(now.getTime() - 3_600_000))}-${shanghai(new Date(now.getTime() + 3 * 3_600_000))}`,
        JOB_BUDGET_MS: budgetMs,
        JOB_CHUNK_MEMBERS: chunkMembers,
        LOG_LEVEL: 'error',
      },
    }),
  )
  await worker.ready
  const base = (await worker.url).href.replace(/\/$/, '')
  // 03:30 in Shanghai two days ago: the segment recompute is due at the first invocation.
  const slot = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000)
  slot.setUTCHours(19, 30)
  let minute = 0
  const invoke = async () => {
    const cpu = workerdCpuSeconds()
    const started = performance.now()
    const at = slot.getTime() + minute++ * 60_000
    const res = await fetch(`${base}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*&time=${at}`)
    await res.text()
    if (!res.ok) throw new Error(`scheduled: HTTP ${res.status}`)
    return { wall: (performance.now() - started) / 1000, cpu: workerdCpuSeconds() - cpu }
  }
  const until = async (name: string, done: () => Promise<boolean>) => {
    const rows: { wall: number; cpu: number }[] = []
    while (rows.length < 40) {
      rows.push(await invoke())
      const r = rows.at(-1)!
      console.log(
        `  ${name} #${rows.length}: wall ${r.wall.toFixed(2)} s, workerd CPU ${r.cpu.toFixed(2)} s`,
      )
      if (await done()) break
    }
    const max = (k: 'wall' | 'cpu') => Math.max(...rows.map((r) => r[k])).toFixed(2)
    const sum = (k: 'wall' | 'cpu') => rows.reduce((n, r) => n + r[k], 0).toFixed(2)
    console.log(
      `${name}: ${rows.length} invocations; per invocation at most wall ${max('wall')} s, CPU ${max('cpu')} s; in all wall ${sum('wall')} s, CPU ${sum('cpu')} s`,
    )
  }
  try {
    minute = -1
    await invoke() // warm the isolate, a minute before the segment recompute is due
    minute = 0
    await db.deleteFrom('job_runs').execute()
    await db.deleteFrom('member_segments').execute()
    await db.deleteFrom('segment_transitions').execute()
    const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
    console.log(
      `budget JOB_BUDGET_MS=${budgetMs}, JOB_CHUNK_MEMBERS=${chunkMembers}; load average ${load()}`,
    )
    t = performance.now()
    await until('segment recompute', async () => {
      const run = await db
        .selectFrom('job_runs')
        .select('status')
        .where('job', '=', 'recompute-segments')
        .where('slot', '=', slot)
        .executeTakeFirst()
      return run?.status === 'succeeded'
    })
    const campaignId = await dueTemplateCampaign(db, {
      name: 'bench',
      template: { template_id: 'T', data: { x: { value: '{{points}}' } } },
    })
    await until('campaign enqueue', async () => {
      const run = await db
        .selectFrom('campaign_runs')
        .select('status')
        .where('campaign_id', '=', campaignId)
        .executeTakeFirst()
      return run?.status === 'enqueued'
    })
    const queued = await db
      .selectFrom('push_outbox')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow()
    console.log(`outbox rows: ${queued.n}; load average ${load()}`)
  } finally {
    await worker.dispose()
  }
} finally {
  await wx.close()
  await db.destroy()
  await database.drop()
}
