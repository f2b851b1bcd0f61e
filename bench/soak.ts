/**
 * `npm run bench:soak`: the default install under mixed load, open loop (bench/README.md, sessions
 * 31 and 32). Three phases, each on a fresh server and data folder holding `BENCH_BASE` members
 * (written into the stopped server's database, spread as bench/segments.ts spreads them, vacuumed
 * and analyzed; 0: none), the baseline first:
 *   control   `BENCH_RATE` pushes/s for `BENCH_SECONDS`, nothing else;
 *   campaign  the same load, plus a campaign to everyone created, scheduled and started through
 *             the operator API (the campaigns job run at once through POST
 *             /admin/jobs/campaigns/run, as `npm run job campaigns` does, rather than at the next
 *             minute's tick), and its report and the analytics overview read every
 *             `BENCH_READ_EVERY` seconds through the same API, as the console's pages would;
 *   jobs      the same load, and every scheduled job (or `BENCH_JOBS`, comma-separated) run one
 *             after the other through POST /admin/jobs/<name>/run, 3 s apart: each job's time and
 *             the pushes scheduled while it ran (p99, max, answered > 4.5 s); a job that ends
 *             after the load is flagged (its pushes are then only those before the end).
 * The server is the real one as `npm start` runs it (package.json's start script: its node flags
 * and env) on a throw-away data folder under the OS temp dir and a free loopback port, in sandbox
 * mode on PGlite — or on PostgreSQL in a throw-away schema with `BENCH_DATABASE_URL`. Campaign
 * pushes are held by the quiet hours (22:00–08:00 community time by default): the server gets
 * `QUIET_HOURS=off` unless `QUIET_HOURS` is set, so that a run at any hour sends.
 *
 * The load is open loop: push i leaves at start + i / rate whether or not the earlier ones were
 * answered (a stall shows as latency, not as a slower generator), and its latency counts from that
 * scheduled time. Each phase's load begins with `BENCH_WARMUP` seconds (default 10) at the same
 * rate that the table leaves out (printed apart): a server just started answers its first seconds
 * of pushes slowly (JIT, PGlite's WebAssembly tiering up), and on a busy machine the backlog that
 * leaves would be most of either phase's p99. The campaign (or the first job) starts
 * `BENCH_CAMPAIGN_AT` seconds after the warm-up. Senders are `BENCH_MEMBERS` openids drawn at
 * random (seed `BENCH_SEED`); a member's first push is a subscribe event, then 35 % 签到, 20 %
 * 帮助, 20 % 积分, 25 % free text, and 2 % of all pushes resend an earlier one of the last 5 s
 * exactly (same MsgId, timestamp, nonce and body: a WeChat retry). Safe mode, signed and sealed
 * by the repository's createPusher with the generated sandbox account. Each request has a 15 s
 * client timeout. A push is valid when answered 200 with `success` or a sealed XML reply whose
 * signature verifies, sealed for the account and addressed to its sender from the account. The
 * quantiles count every push, one not answered (timed out, refused, not 200) as worse than any
 * answer ("failed"). A push's latency includes its preparation here (signing and sealing, not
 * timed apart) — and the control always runs first: compare phases of one run, and runs at the
 * same load average.
 *
 *   npm run bench:soak
 *   BENCH_SECONDS=30 npm run bench:soak
 * Env: BENCH_RATE (200), BENCH_SECONDS (120 per phase), BENCH_WARMUP (10), BENCH_MEMBERS (12000),
 *      BENCH_SEED (1), BENCH_CAMPAIGN_AT (10), BENCH_READ_EVERY (4), BENCH_BASE (100000),
 *      BENCH_JOBS (all), BENCH_PHASES (control,campaign,jobs), BENCH_DATABASE_URL (PostgreSQL
 *      instead of PGlite), BENCH_SERVER_LOG (a path: each server's output lines are written to
 *      <path>.1, <path>.2 … in the order the servers start).
 * Exits non-zero only when the harness fails (a server that does not start, a campaign the API
 * refuses), never on a timing (a job that fails is printed with its error). The server's
 * warn/error log lines are counted per phase.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { jobs } from '../jobs/index.js'
import type { AccountConfig } from '../src/config.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import { nodeCrypto } from '../src/node-crypto.js'
import { createPusher, nextMsgId, type PreparedPush, type Pusher } from '../src/sandbox/pusher.js'
import type { XmlObject } from '../src/wechat/codec.js'
import { rng } from '../test/prng.js'
import { envNumber } from './env-number.js'
import { untilHealthy } from './healthz.js'
import { insertSpreadMembers, throwawaySchema } from './throwaway-schema.js'

const rate = envNumber('BENCH_RATE', 200, { min: 1 })
const seconds = envNumber('BENCH_SECONDS', 120, { min: 1 })
const warmup = envNumber('BENCH_WARMUP', 10, { min: 0 })
const members = envNumber('BENCH_MEMBERS', 12_000, { min: 1, integer: true })
const seed = envNumber('BENCH_SEED', 1, { integer: true })
const campaignAt = envNumber('BENCH_CAMPAIGN_AT', 10, { min: 0 })
const readEvery = envNumber('BENCH_READ_EVERY', 4, { min: 0.1 })
const phases = (process.env.BENCH_PHASES ?? 'control,campaign,jobs').split(',')
const base = envNumber('BENCH_BASE', 100_000, { min: 0, integer: true })
const jobNames = process.env.BENCH_JOBS?.split(',') ?? jobs.map((j) => j.name)
const pgUrl = process.env.BENCH_DATABASE_URL
const serverLog = process.env.BENCH_SERVER_LOG
let servers = 0
const TIMEOUT_MS = 15_000
const LATE_MS = 4_500
const GH = 'gh_sandbox00000'
const root = new URL('..', import.meta.url).pathname
const startScript = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).scripts.start as string
const load = () => loadavg().map((x) => x.toFixed(1))

type Outcome = 'valid' | 'invalid' | 'status' | 'timeout' | 'error'
interface Sample {
  /** Scheduled send time, ms since the phase's start. */
  at: number
  ms: number
  outcome: Outcome
}

/** A port nothing listens on now (the OS's pick). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
    s.once('error', reject)
  })

/** Cleanups for Ctrl-C: the running server and its data folder or schema. */
const cleanups = new Set<() => Promise<void>>()
let interrupted = false
// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal, and relayed by tsx).
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, async () => {
    if (interrupted) return
    interrupted = true
    // The latest first: a server stops before its store is dropped.
    for (const c of [...cleanups].reverse()) await c().catch(() => {})
    process.exit(130)
  })

/** Where a server keeps its data: a data folder, and with BENCH_DATABASE_URL a throw-away schema. */
async function makeStore() {
  const schema = pgUrl ? await throwawaySchema('bench_soak') : undefined
  const dataDir = mkdtempSync(join(tmpdir(), 'quanzi-soak-'))
  const drop = async () => {
    cleanups.delete(drop)
    rmSync(dataDir, { recursive: true, force: true })
    await schema?.drop()
  }
  cleanups.add(drop)
  return { dataDir, schema, drop }
}
type Store = Awaited<ReturnType<typeof makeStore>>

/**
 * `npm start`'s script (node flags and env as package.json has them) on `store` and a fresh port, in
 * sandbox mode; its log lines at warn and error (JSON `level`, or any other line naming one) are
 * counted. `stop()` stops the server and leaves the store.
 */
async function startServer(store: Store) {
  const { dataDir, schema } = store
  const databaseUrl = pgUrl && schema ? new URL(pgUrl) : undefined
  databaseUrl?.searchParams.set('options', `-c search_path=${schema!.schema}`)
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), QUANZI_DATA_DIR: dataDir }
  // Sandbox mode: no account, database or operator token from this shell.
  for (const name of Object.keys(env))
    if (/^(WECHAT_|DATABASE_URL$|ADMIN_TOKEN$)/.test(name)) delete env[name]
  if (databaseUrl) env.DATABASE_URL = databaseUrl.href
  env.QUIET_HOURS ??= 'off'
  const child = spawn('sh', ['-c', startScript], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  /** warn and error lines by level and message, with the first line of each message. */
  const log = {
    lines: 0,
    warn: 0,
    error: 0,
    kinds: new Map<string, { n: number; first: string }>(),
    /** The server's SLOW_STATEMENT lines (DATABASE_SLOW_STATEMENT_MS): each one's time and text. */
    slow: [] as { ms: number; statement: string }[],
  }
  const saved = serverLog ? createWriteStream(`${serverLog}.${++servers}`) : undefined
  for (const stream of [child.stdout!, child.stderr!])
    createInterface({ input: stream }).on('line', (line) => {
      log.lines++
      saved?.write(`${line}\n`)
      let entry: { level?: string; msg?: string; code?: string; ms?: number; statement?: string }
      try {
        entry = JSON.parse(line)
      } catch {
        const level = /\berror\b/i.test(line) ? 'error' : /\bwarn/i.test(line) ? 'warn' : undefined
        entry = { level, msg: line.slice(0, 80) }
      }
      if (entry.level !== 'warn' && entry.level !== 'error') return
      if (entry.code === 'SLOW_STATEMENT')
        log.slow.push({
          ms: entry.ms ?? 0,
          statement: (entry.statement ?? '').replace(/\s+/g, ' '),
        })
      log[entry.level]++
      const key = `${entry.level}: ${entry.msg}`
      const kind = log.kinds.get(key) ?? { n: 0, first: line.slice(0, 400) }
      kind.n++
      log.kinds.set(key, kind)
    })
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    cleanups.delete(stop)
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(killer)
    }
    saved?.end()
  }
  cleanups.add(stop)
  const base = `http://127.0.0.1:${port}`
  try {
    await untilHealthy(base, child)
    const read = (file: string) => {
      try {
        return JSON.parse(readFileSync(join(dataDir, file), 'utf8'))
      } catch (error) {
        // node.ts reads a .env in the repository: one with an account leaves sandbox mode
        throw new Error(`no ${file}: not in sandbox mode (a .env with WECHAT_*?)`, { cause: error })
      }
    }
    const account = read('sandbox-account.json') as AccountConfig
    const { adminToken } = read('sandbox-services.json') as { adminToken: string }
    /**
     * The server's CPU seconds so far (user + system, all threads; `sh -c` execs node: the same
     * PID), and its main thread's — the event loop's — seconds on a CPU and waiting for one
     * (/proc schedstat): a wait that grows under load is other processes taking the cores.
     */
    const cpu = () => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      const [run, wait] = readFileSync(`/proc/${child.pid}/schedstat`, 'utf8').split(' ')
      return {
        all: (Number(f[11]) + Number(f[12])) / 100,
        run: Number(run) / 1e9,
        wait: Number(wait) / 1e9,
      }
    }
    return { base, account, adminToken, log, stop, cpu }
  } catch (error) {
    await stop()
    throw error
  }
}
type Server = Awaited<ReturnType<typeof startServer>>

/** The operator API with the sandbox's operator token. */
async function api(s: Server, method: string, path: string, body?: unknown) {
  const res = await fetch(`${s.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

/**
 * Runs job `name` through POST /admin/jobs/<name>/run, which answers when the job ends: waited for
 * however long it runs (node:http, no timeout — fetch gives up on a response's headers after 300 s,
 * and a job still running on the server must not be reported as failed).
 */
function runJob(s: Server, name: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(`${s.base}/admin/jobs/${name}/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminToken}` },
    })
    req.on('error', reject)
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('error', reject)
      // A connection closed before the whole answer: no 'end' comes.
      res.on('close', () => {
        if (!res.complete) reject(new Error(`job ${name}: the answer was cut off`))
      })
      res.on('end', () => {
        if (res.statusCode !== 200)
          return reject(new Error(`job ${name}: HTTP ${res.statusCode} ${text.slice(0, 300)}`))
        try {
          resolve(JSON.parse(text))
        } catch {
          reject(new Error(`job ${name}: not JSON: ${text.slice(0, 300)}`))
        }
      })
    })
    req.end()
  })
}

/**
 * What WeChat accepts as the answer to a safe-mode push from `openid`: `success`, or a sealed reply
 * that the pusher opens (its signature verified, sealed for the account) addressed to its sender.
 */
async function validReply(wx: Pusher, body: string, openid: string) {
  if (body === 'success') return true
  if (!body.includes('<Encrypt>')) return false
  try {
    const reply = await wx.openReply(body)
    return (
      reply?.ToUserName === openid && reply.FromUserName === GH && typeof reply.MsgType === 'string'
    )
  } catch {
    return false
  }
}

/**
 * The open-loop load: one push every 1/rate s for `warmup + seconds`, each timed from its schedule
 * (`at`: ms since `t0`).
 */
async function pushLoad(s: Server, t0: number) {
  const wx = createPusher({
    url: `${s.base}/wechat/${s.account.appid}`,
    account: s.account,
    ghId: GH,
    crypto: nodeCrypto,
  })
  const random = rng(seed)
  const followed = new Set<number>()
  const recent: { push: PreparedPush; openid: string }[] = []
  const samples: Sample[] = []
  const inFlight: Promise<void>[] = []
  const errors = new Map<string, number>()
  let lag = 0
  let resent = 0
  const fire = async (due: number, next: () => Promise<{ push: PreparedPush; openid: string }>) => {
    let outcome: Outcome
    try {
      const { push, openid } = await next()
      const res = await fetch(push.url, {
        method: 'POST',
        headers: { 'content-type': push.contentType },
        body: push.body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      const body = await res.text()
      const ms = performance.now() - due
      if (res.status !== 200) outcome = 'status'
      else outcome = (await validReply(wx, body, openid)) ? 'valid' : 'invalid'
      samples.push({ at: Math.round((due - t0) * 1000) / 1000, ms, outcome })
    } catch (error) {
      outcome = (error as Error).name === 'TimeoutError' ? 'timeout' : 'error'
      if (outcome === 'error') {
        const e = error as Error & { cause?: Error & { code?: string } }
        const why = `${e.message}${e.cause ? `: ${e.cause.code ?? e.cause.message}` : ''}`
        errors.set(why, (errors.get(why) ?? 0) + 1)
      }
      samples.push({
        at: Math.round((due - t0) * 1000) / 1000,
        ms: performance.now() - due,
        outcome,
      })
    }
  }
  const fresh = async () => {
    const m = Math.floor(random() * members)
    const openid = `o_soak_${m}`
    const header = { FromUserName: openid, CreateTime: Math.floor(Date.now() / 1000) }
    let fields: XmlObject
    if (!followed.has(m)) {
      followed.add(m)
      fields = { ...header, MsgType: 'event', Event: 'subscribe' }
    } else {
      const r = random()
      const content = r < 0.35 ? '签到' : r < 0.55 ? '帮助' : r < 0.75 ? '积分' : `随便聊聊 ${m}`
      fields = { ...header, MsgType: 'text', Content: content, MsgId: BigInt(nextMsgId()) }
    }
    const sent = { push: await wx.prepare(fields), openid }
    recent.push(sent)
    if (recent.length > rate * 5) recent.shift()
    return sent
  }
  const total = Math.round((warmup + seconds) * rate)
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    lag = Math.max(lag, performance.now() - due)
    if (recent.length > 0 && random() < 0.02) {
      const again = recent[Math.floor(random() * recent.length)]!
      resent++
      inFlight.push(fire(due, async () => again))
    } else inFlight.push(fire(due, fresh))
  }
  await Promise.all(inFlight)
  return { samples, lag, resent, members: followed.size, errors }
}

/** The campaign to everyone and the console's reads, until `until` resolves. */
async function campaignOps(s: Server, t0: number, until: Promise<unknown>) {
  const ops = { id: 0, jobMs: Number.NaN, job: '', reads: [] as number[], readErrors: 0 }
  await sleep(t0 + (warmup + campaignAt) * 1000 - performance.now())
  const path = `/admin/api/accounts/${s.account.appid}/campaigns`
  const created = await api(s, 'POST', path, {
    name: 'soak',
    audience: {},
    template: { template_id: 'TPL_SOAK', data: { thing1: { value: '周末活动' } } },
    schedule: { at: new Date().toISOString() },
  })
  ops.id = created.id
  await api(s, 'POST', `${path}/${ops.id}/schedule`)
  const started = performance.now()
  const job = runJob(s, 'campaigns').then(
    (r) => {
      ops.jobMs = performance.now() - started
      ops.job = JSON.stringify(r).slice(0, 200)
    },
    (error) => {
      ops.job = String(error)
    },
  )
  let done = false
  void until.then(() => {
    done = true
  })
  while (!done) {
    const tick = performance.now()
    await Promise.all(
      [`${path}/${ops.id}/report`, `/admin/api/analytics/overview?appid=${s.account.appid}`].map(
        (p) =>
          api(s, 'GET', p).then(
            () => ops.reads.push(performance.now() - tick),
            () => ops.readErrors++,
          ),
      ),
    )
    await Promise.race([until, sleep(tick + readEvery * 1000 - performance.now())])
  }
  await job
  return ops
}

/** `count` members of the account in the stopped server's database (bench/throwaway-schema.ts). */
async function seedMembers(store: Store, appid: string, count: number) {
  const db = store.schema ? store.schema.db : await pgliteDatabase(join(store.dataDir, 'pglite'))
  try {
    const started = performance.now()
    const seed = { appid, prefix: 'o_seed_', count, now: new Date(), points: true }
    await insertSpreadMembers(db, seed)
    return performance.now() - started
  } finally {
    if (!store.schema) await db.destroy()
  }
}

/** One job run on request during the load: when it started (s after the warm-up) and took. */
interface JobRun {
  name: string
  at: number
  ms: number
  result: string
}

/**
 * Runs `names` one after the other through POST /admin/jobs/<name>/run (as `npm run job <name>`
 * does), from `BENCH_CAMPAIGN_AT` s after the warm-up, 3 s apart so that each one's pushes stand
 * apart.
 */
async function jobOps(s: Server, t0: number, names: string[]) {
  const runs: JobRun[] = []
  await sleep(t0 + (warmup + campaignAt) * 1000 - performance.now())
  for (const name of names) {
    const started = performance.now()
    const result = await runJob(s, name).then(
      (r) => JSON.stringify(r).slice(0, 160),
      (error) => String(error).slice(0, 160),
    )
    const at = (started - t0) / 1000 - warmup
    runs.push({ name, at, ms: performance.now() - started, result })
    await sleep(3000)
  }
  return runs
}

/** Nearest-rank quantile of sorted `xs`. */
const quantile = (xs: number[], q: number) =>
  xs.length ? xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]! : Number.NaN
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const ms = (x: number) =>
  Number.isNaN(x)
    ? '–'
    : x === Number.POSITIVE_INFINITY
      ? 'failed'
      : x >= 1000
        ? `${(x / 1000).toFixed(1)} s`
        : `${x.toFixed(0)} ms`
/** `a / b` as a ratio, or – where either is a failure's or missing. */
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)} ×` : '–')

/** What the pushes scheduled in [from, to) s got. */
function summarize(samples: Sample[], from: number, to: number) {
  const mine = samples.filter((x) => x.at >= from * 1000 && x.at < to * 1000)
  const count = (o: Outcome) => mine.filter((x) => x.outcome === o).length
  // The quantiles count every push: one not answered (timed out, refused, not 200) as worse than
  // any answer (∞, printed "failed"), so that failures never make a stall look shorter.
  const latency = (x: Sample) =>
    x.outcome === 'valid' || x.outcome === 'invalid' ? x.ms : Number.POSITIVE_INFINITY
  const ok = sorted(mine.map(latency))
  const windows = new Map<number, number[]>()
  for (const x of mine) {
    const w = Math.floor((x.at / 1000 - from) / 10) * 10
    const list = windows.get(w)
    if (list) list.push(latency(x))
    else windows.set(w, [latency(x)])
  }
  let worst = { at: 0, p99: Number.NaN, max: Number.NaN }
  const perWindow: string[] = []
  for (const [at, xs] of [...windows].sort((a, b) => a[0] - b[0])) {
    const w = sorted(xs)
    const p99 = quantile(w, 0.99)
    perWindow.push(`${at} s ${ms(p99)}`)
    if (!(p99 <= worst.p99)) worst = { at, p99, max: w.at(-1)! }
  }
  return {
    pushes: mine.length,
    valid: count('valid'),
    invalid: count('invalid'),
    late: mine.filter((x) => x.ms > LATE_MS && x.outcome !== 'timeout').length,
    timeouts: count('timeout'),
    errors: count('error'),
    non200: count('status'),
    p50: quantile(ok, 0.5),
    p90: quantile(ok, 0.9),
    p99: quantile(ok, 0.99),
    max: ok.at(-1) ?? Number.NaN,
    worst,
    perWindow,
  }
}

async function phase(name: string) {
  const store = await makeStore()
  try {
    return await phaseOn(store, name)
  } finally {
    await store.drop()
  }
}

async function phaseOn(store: Store, name: string) {
  let seeded = ''
  if (base > 0) {
    // A long-lived database: the server makes and migrates it (and the sandbox account), stops,
    // and the members are written into it before it starts again.
    const first = await startServer(store)
    await first.stop()
    const ms = await seedMembers(store, first.account.appid, base)
    seeded = `; ${base.toLocaleString()} members seeded in ${(ms / 1000).toFixed(1)} s`
  }
  const s = await startServer(store)
  try {
    console.log(
      `\n${name}: server up at ${s.base} (${pgUrl ? 'PostgreSQL' : 'PGlite'})${seeded}; load average ${load()}`,
    )
    const t0 = performance.now() + 200
    const loadRun = pushLoad(s, t0)
    // The CPU figures are the measured part's, from the end of the warm-up.
    await sleep(t0 + warmup * 1000 - performance.now())
    const cpu0 = { server: s.cpu(), bench: process.cpuUsage() }
    const measured = performance.now()
    const opsRun = name === 'campaign' ? campaignOps(s, t0, loadRun) : undefined
    const jobsRun = name === 'jobs' ? jobOps(s, t0, jobNames) : undefined
    const run = await loadRun
    // The CPU of the load's time: a campaign's run or a job may go on after it.
    const wall = (performance.now() - measured) / 1000
    const used = process.cpuUsage(cpu0.bench)
    const end = s.cpu()
    const ops = await opsRun
    const jobRuns = (await jobsRun) ?? []
    const share = (x: number) => `${((x / wall) * 100).toFixed(0)} %`
    const cpu = `server ${share(end.all - cpu0.server.all)} (main thread on a CPU ${share(end.run - cpu0.server.run)}, waiting for one ${share(end.wait - cpu0.server.wait)}), this process ${share((used.user + used.system) / 1e6)}`
    const report = ops
      ? await api(s, 'GET', `/admin/api/accounts/${s.account.appid}/campaigns/${ops.id}/report`)
      : undefined
    const sum = (k: 'audience' | 'sent') =>
      (report?.variants as Record<string, number>[] | undefined)?.reduce((n, v) => n + v[k]!, 0)
    const warm = summarize(run.samples, 0, warmup)
    const result = {
      name,
      ...summarize(run.samples, warmup, warmup + seconds),
      // a large campaign's counts are the last count (countsAsOf), up to a minute or more old
      campaign: !report
        ? '–'
        : report.counting
          ? 'being counted'
          : `${sum('audience')} / ${sum('sent')}${report.countsAsOf ? ` as of ${report.countsAsOf}` : ''}`,
      log: s.log,
    }
    console.log(
      `${name}: ${run.samples.length} pushes (${run.resent} resends, ${run.members} members), generator lag at most ${ms(run.lag)}; CPU over the ${wall.toFixed(0)} s after the warm-up: ${cpu}; load average ${load()}`,
    )
    console.log(
      `  warm-up (first ${warmup} s, not in the table): ${warm.pushes} pushes, ${warm.late} answered > 4.5 s, ${warm.timeouts + warm.errors + warm.non200 + warm.invalid} failed, p99 ${ms(warm.p99)}, max ${ms(warm.max)}`,
    )
    if (ops) {
      const reads = sorted(ops.reads)
      console.log(
        `  campaign ${ops.id}: job run ${ms(ops.jobMs)} ${ops.job}; reads p50 ${ms(quantile(reads, 0.5))}, max ${ms(reads.at(-1) ?? Number.NaN)}, ${ops.readErrors} failed; reach ${JSON.stringify(report?.reach?.total ?? null)}`,
      )
    }
    console.log(
      `  p99 per 10 s window (by scheduled time; a push not answered counts as failed): ${result.perWindow.join(', ')}`,
    )
    for (const j of jobRuns) {
      const during = summarize(run.samples, warmup + j.at, warmup + j.at + j.ms / 1000)
      const past =
        j.at + j.ms / 1000 > seconds ? ' (ended after the load: raise BENCH_SECONDS)' : ''
      console.log(
        `  job ${j.name} at ${j.at.toFixed(1)} s: ${ms(j.ms)}${past}; pushes meanwhile ${during.pushes}, p99 ${ms(during.p99)}, max ${ms(during.max)}, ${during.late} answered > 4.5 s; ${j.result}`,
      )
    }
    for (const [why, n] of run.errors) console.log(`  connection error ×${n}: ${why}`)
    await s.stop() // the log's count includes the shutdown's lines
    console.log(`  server log: ${s.log.lines} lines, ${s.log.warn} warn, ${s.log.error} error`)
    for (const [key, { n, first }] of s.log.kinds)
      console.log(`    ×${n} ${key}\n      e.g. ${first}`)
    // Slow statements by their text's beginning: how often, the longest, in all.
    const slow = new Map<string, number[]>()
    for (const x of s.log.slow) {
      const key = x.statement.slice(0, 150)
      slow.set(key, [...(slow.get(key) ?? []), x.ms])
    }
    for (const [statement, times] of [...slow].sort((a, b) => total(b[1]) - total(a[1])))
      console.log(
        `    slow ×${times.length}, longest ${ms(Math.max(...times))}, ${ms(total(times))} in all: ${statement}`,
      )
    return result
  } finally {
    await s.stop()
  }
}

const results = []
for (const name of phases) results.push(await phase(name))
console.log(
  `\n${rate} pushes/s for ${seconds} s per phase after a ${warmup} s warm-up, ${members} members, ${pgUrl ? 'PostgreSQL' : 'PGlite'}\n`,
)
console.log(
  '| phase | pushes | 200, valid reply | answered > 4.5 s | timeouts / connection errors / non-200 / invalid | p50 | p90 | p99 | max | worst 10 s window: p99 (max) | campaign recipients / sent | server warn / error lines |',
)
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const r of results)
  console.log(
    `| ${r.name} | ${r.pushes} | ${r.valid} | ${r.late} | ${r.timeouts} / ${r.errors} / ${r.non200} / ${r.invalid} | ${ms(r.p50)} | ${ms(r.p90)} | ${ms(r.p99)} | ${ms(r.max)} | ${ms(r.worst.p99)} (${ms(r.worst.max)}) at ${r.worst.at} s | ${r.campaign} | ${r.log.warn} / ${r.log.error} |`,
  )
const control = results.find((r) => r.name === 'control')
for (const r of results)
  if (control && r !== control)
    console.log(
      `| ${r.name} / control | | | ${r.late} vs ${control.late} | | | | **${ratio(r.p99, control.p99)}** | ${ratio(r.max, control.max)} | ${ratio(r.worst.p99, control.worst.p99)} | | |`,
    )
