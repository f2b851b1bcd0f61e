/**
 * Webhook throughput, measured as ratios within one run (README → bench/README.md):
 *   (a) Hono hello-world POST                                   — the baseline
 *   (b) safe-mode text push → decrypt, parse, route, encrypted reply; dedupe and members in memory
 *   (c) the same with the database dedupe and member upsert: PGlite, and PostgreSQL if reachable
 *   (d) a refused unauthenticated 64 KB push, answered 401 by the (b) server — what an attacker's
 *       request costs: without msg_signature (refused from the query, the body never read), and a
 *       safe-mode envelope with a wrong msg_signature (the worst case: the body is read and
 *       hashed); (a′) is that transport alone: a hello-world that reads the same body, 401
 *   (e) node-webot/wechat 2.1 on Express 4 — the classic Node middleware — on the same kind of
 *       safe-mode push, answering the same reply text as (b)
 *   (g) the bare push (bench/bare-push.ts): node:http, node:crypto and one fast-xml-parser pass, no
 *       framework, no checks beyond the signature, no dedupe or router — the least any server can
 *       do for (b)'s push with those parts: the ceiling of (b) on this machine
 *   (h) the bare push as a Hono app on @hono/node-server (the framework the product card fixes):
 *       the ceiling of (b) on quanzi's stack
 *   (w) quanzi's webhook middleware alone (src/wechat/webhook.ts: the hardening checks, envelope,
 *       decryption, parse, typed message) answering the same reply, sealed, with no dispatch: (b)
 *       without dedupe, answered-push memo, replay cache, router, handler and deadline timer
 *   (m) (w) plus the least dispatch (b)'s push needs, written inline with Maps: the replay check,
 *       the dedupe claim, the member's activity, the command lookup, the reply deadline armed and
 *       cleared, the answer stored on the claim — (b)'s work with none of quanzi's dispatch layers
 *       (nor the app's middleware, the route's size check and refusal counter, the app's router)
 *   (f) the floor of a push that asks the database once: (b) plus one `select 1` round trip
 *       (PGlite, PostgreSQL) — the ceiling for (r) and (c), which need at least that
 *   (s) (b) writing the rows (c) writes on PostgreSQL — replay stamp, dedupe claim, the member's
 *       activity, the reply — with the claim's three rows written set-based, one statement a batch
 *       (no PL/pgSQL function called per push, none of its reads): what (c) would cost without its
 *       per-push function
 *   (r) a WeChat retry: one push, answered once before each measurement, then sent again and
 *       again (same MsgId, timestamp, nonce and body): served from the stored reply (memory,
 *       PGlite, PostgreSQL)
 * Every other push has a fresh MsgId (prepared just before each measurement, its timestamp fresh),
 * so nothing is served from dedupe.
 *
 *   npm run bench                    # 10 s per target, 50 connections
 *   BENCH_SECONDS=5 npm run bench
 *   npm run bench:checkin            # 签到 from a new member per push, hello vs PostgreSQL, plus
 *                                    # pgbench -N on the same machine (BENCH_PGBENCH=1)
 * Env: BENCH_TEXT (default 帮助), BENCH_MEMBERS (distinct senders, default 5000),
 *      BENCH_TARGETS (hello,hello-raw,hello-read,refused-unsigned,refused,memory,webot,bare,bare-hono,webhook,minimal,retry-memory,
 *      floor-pglite,pglite,retry-pglite,floor-postgres,postgres,retry-postgres, and
 *      writes-postgres (not by default), postgres-unprepared, retry-postgres-unprepared: the same with DATABASE_STATEMENT_CACHE=0),
 *      BENCH_PGBENCH=1 (pgbench, each workload with -M simple and -M prepared),
 *      (with 签到 also the check-in's 3 statements one push at a time and, after a (c) PostgreSQL
 *      target, batched as that target's server batched them: bench/checkin-script.ts),
 *      BENCH_FLOOR=1 (with BENCH_PGBENCH=1 and 签到: pgbench of the least a first check-in must
 *      write, plain SQL, in the app's 3 transactions and in 1, and in the 3 batched as the (c)
 *      PostgreSQL target batched its statements, also with the points lots and the analytics
 *      fact — bench/checkin-script.ts),
 *      BENCH_CPU_PROF=<dir> (a V8 CPU profile of each server process, for Chrome DevTools),
 *      BENCH_NODE_FLAGS (more node flags for the servers, e.g. "--heap-prof --heap-prof-dir=/tmp/h"),
 *      BENCH_TSX=1 (the servers run through tsx instead of bundled as `npm start` runs them),
 *      BENCH_MAINTAIN=1 (after the warm-up the (c)/(r) servers VACUUM and ANALYZE what it wrote:
 *      the steady state a live server reaches within minutes; see `maintain` below).
 * Each target also prints the load generator's own CPU per request (autocannon, this process):
 * with two cores shared, a target is server-bound only while that stays well below the server's.
 *      BENCH_VARIANT (e.g. `MALLOC_ARENA_MAX=2 --max-semi-space-size=4`: each target runs again
 *      next to itself — after it, and before it in the reversed rounds — its server given these
 *      environment variables and node flags: what a runtime setting costs, within one run;
 *      `BENCH_BUNDLE=<file>` in it runs another build of bench/server.ts instead, e.g. the previous
 *      commit's from `npm run bench:bundle-of -- <commit>`: an A/B of two versions of the code,
 *      interleaved round by round).
 *      BENCH_ROUNDS=R (default 1: each target started, measured once and stopped in turn): every
 *      target's server is started and warmed up first, then measured R times in turn for
 *      BENCH_SECONDS each (round 1: every target once, round 2: the same in reverse order, …). A
 *      target's figures are the median of its rounds, and its ratio to the first target is the
 *      median of the per-round ratios: on a machine whose speed drifts from one minute to the
 *      next, a ratio between targets measured seconds apart, repeated, instead of one between
 *      targets minutes apart.
 *      BENCH_FRESH=1 (with BENCH_ROUNDS): every round starts each target's server anew (warm-up
 *      included) and stops it after its measurement. Two processes of one build differ by a few
 *      per cent (an A/A read 0.95 × and 1.03 ×: bench/README.md, session 38); with fresh servers
 *      a ratio's median is over R pairs of processes, not over one pair measured R times.
 * The database targets also report statements per push (counted in the server).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import pg from 'pg'
import { nodeCrypto } from '../src/node-crypto.js'
import { createPusher, nextMsgId, type PreparedPush } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT } from '../test/server.js'
import {
  batchedClients,
  writeBatchedCheckinScript,
  writeBatchedFloorScript,
  writeCheckinScript,
  writeFloorScripts,
} from './checkin-script.js'
import { bundleServer } from './server-bundle.js'
import { textPushes } from './text-pushes.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rounds = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 1)))
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const pgHost = ['-h', '127.0.0.1', '-U', 'postgres']
const content = process.env.BENCH_TEXT ?? '帮助'
const members = Number(process.env.BENCH_MEMBERS ?? 5000)
// BENCH_MAINTAIN=1: after the warm-up, each database target's server runs what the
// database-maintenance job (or autovacuum) would within minutes on a live server — VACUUM and
// ANALYZE of what the warm-up wrote — so the run measures plans made on the tables' real size.
const maintain = process.env.BENCH_MAINTAIN === '1'
const fresh = process.env.BENCH_FRESH === '1'
const wanted = (
  process.env.BENCH_TARGETS ??
  'hello,hello-read,refused-unsigned,refused,memory,webot,bare,bare-hono,webhook,minimal,retry-memory,floor-pglite,pglite,retry-pglite,floor-postgres,postgres,retry-postgres'
).split(',')

/**
 * The target servers run bundled as `npm start` runs the server (bench/server-bundle.ts), removed
 * at the end. `BENCH_TSX=1` (also as a `BENCH_VARIANT`) runs bench/server.ts through tsx instead.
 */
const serverBundle = await bundleServer('server')

async function start(scenario: string, env: Record<string, string> = {}, flags: string[] = []) {
  // node itself, not npx: SIGTERM must reach the server to get its statement count
  const tsx = (env.BENCH_TSX ?? process.env.BENCH_TSX) === '1'
  if (tsx && env.BENCH_BUNDLE)
    throw new Error('BENCH_BUNDLE is a bundle: it cannot run with BENCH_TSX=1')
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
    : []
  const child = spawn(
    process.execPath,
    [
      ...profile,
      ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      ...flags,
      ...(tsx ? ['--import', 'tsx', 'bench/server.ts'] : [env.BENCH_BUNDLE ?? serverBundle.file]),
      scenario,
    ],
    {
      // stdin is a pipe from this process: the server exits when it closes, so a bench killed
      // midway leaves no server behind to take CPU and memory from the next run.
      env: { ...process.env, ...env, BENCH_EXIT_WITH_PARENT: '1' },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  )
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const first = await Promise.race([
    lines.next(),
    new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`${scenario} server exited with ${code}`))),
    ),
  ])
  return { child, lines, port: (JSON.parse(first.value) as { port: number }).port }
}

/** Stops a target; it answers with the statements it ran, in all and of each batched kind. */
async function stop(
  child: ChildProcess,
  lines: AsyncIterator<string>,
): Promise<{ queries: number; kinds?: Record<string, number> }> {
  child.kill('SIGTERM')
  const last = await lines.next()
  await new Promise((resolve) =>
    child.exitCode === null ? child.once('exit', resolve) : resolve(0),
  )
  return last.value
    ? (JSON.parse(last.value) as { queries: number; kinds?: Record<string, number> })
    : { queries: 0 }
}

/** The safe account's pusher for a target's server, signing and sealing with node:crypto. */
const pusher = (port: number) =>
  createPusher({
    url: `http://127.0.0.1:${port}/wechat`,
    account: SAFE_ACCOUNT,
    crypto: nodeCrypto,
  })

/**
 * `count` pushes from `members` senders of the run's own: two runs sharing a schema meet no member
 * of the other, so each starts from the same state. `offset` continues a run's senders where its
 * previous pushes stopped.
 */
async function prepare(
  port: number,
  count: number,
  run: string,
  offset = 0,
): Promise<PreparedPush[]> {
  return textPushes(pusher(port), {
    count,
    content,
    sender: `o_bench_${run}_`,
    senders: members,
    offset,
  })
}

/**
 * (r): one push, answered once (checked: a 200 with a reply), then repeated as WeChat's retry.
 * Also used to learn the reply text (b) renders, for (e) to answer the same.
 */
async function retryPush(port: number): Promise<{ push: PreparedPush; reply: string }> {
  const wx = pusher(port)
  const push = await wx.prepare({
    FromUserName: 'o_bench_retry',
    CreateTime: Math.floor(Date.now() / 1000),
    MsgType: 'text',
    Content: content,
    MsgId: BigInt(nextMsgId()),
  })
  const first = await wx.send(push)
  const again = await wx.send(push)
  const reply = first.reply?.Content
  if (first.status !== 200 || typeof reply !== 'string' || again.reply?.Content !== reply)
    throw new Error(`the retry push got ${first.status}, ${again.status}: fix the bench`)
  return { push, reply }
}

/**
 * (d): one request repeated — a 64 KB safe-mode envelope (as big as the default body limit allows)
 * with a fresh timestamp and a wrong msg_signature. Checked to be refused with 401 before the run.
 */
async function refusedPush(port: number, signed = true): Promise<PreparedPush> {
  const q = new URLSearchParams({
    signature: '0'.repeat(40),
    timestamp: String(Math.floor(Date.now() / 1000)),
    nonce: 'bench1',
    openid: 'o_attacker',
    ...(signed ? { encrypt_type: 'aes', msg_signature: '0'.repeat(40) } : {}),
  })
  const shell =
    '<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[]]></Encrypt></xml>'
  const body = shell.replace(
    '<![CDATA[]]>',
    `<![CDATA[${'QUFB'.repeat((65_536 - shell.length) >> 2)}]]>`,
  )
  const push = { url: `http://127.0.0.1:${port}/wechat?${q}`, body, contentType: 'text/xml' }
  const res = await fetch(push.url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/xml' },
  })
  if (res.status !== 401 || body.length > 65_536)
    throw new Error(`the refused push got ${res.status} (${body.length} bytes): fix the bench`)
  return push
}

async function load(port: number, pushes: PreparedPush[] | null, duration = seconds) {
  let i = 0
  // A request repeated ((a), (a′), (d)) is built once by autocannon; pushes are set up one by one
  // (a setupRequest would make the load generator rebuild a 64 KB request every time).
  const only = pushes?.length === 1 ? pushes[0]! : undefined
  const request = {
    method: 'POST' as const,
    path: only ? only.url.slice(only.url.indexOf('/wechat')) : '/wechat',
    headers: { 'content-type': 'text/xml' },
    body: only ? only.body : 'hello',
  }
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration,
    requests: [
      pushes && !only
        ? {
            ...request,
            setupRequest: (req) => {
              const p = pushes[i++ % pushes.length]!
              return { ...req, path: p.url.slice(p.url.indexOf('/wechat')), body: p.body }
            },
          }
        : request,
    ],
  })
  const bad = result.non2xx + result.errors + result.timeouts
  if (pushes && pushes.length > 1 && i > pushes.length)
    console.warn(`  note: ${i - pushes.length} pushes repeated a MsgId`)
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    bad,
    total: result.requests.total,
    /** Pushes taken from `pushes` (the next measurement starts after them). */
    sent: i,
  }
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

/**
 * CPU time of a process so far, in µs (Linux /proc; undefined elsewhere). Server CPU per request
 * holds up better than req/s when the load generator and other work share the cores.
 */
function cpuMicros(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100) // utime + stime, 100 Hz
  } catch {
    return undefined
  }
}

/**
 * CPU time of every PostgreSQL process on this machine so far, in µs by pid (Linux /proc): the
 * database's share of a run on the same two cores. Undefined where /proc can't be read.
 */
function postgresMicros(): Map<number, number> | undefined {
  try {
    const out = new Map<number, number>()
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      const stat = (() => {
        try {
          return readFileSync(`/proc/${pid}/stat`, 'utf8')
        } catch {
          return '' // exited meanwhile
        }
      })()
      if (!stat.includes(' (postgres) ')) continue
      const fields = stat.split(') ')[1]!.split(' ')
      out.set(Number(pid), (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100))
    }
    return out
  } catch {
    return undefined
  }
}

/**
 * CPU µs spent between two readings by pid: a process started meanwhile counts from 0, one that
 * exited meanwhile is left out — its CPU since the first reading can no longer be read (counting
 * its whole lifetime out made the database's figure negative when an autovacuum worker ended).
 */
function cpuSpent(before: Map<number, number>, after: Map<number, number>): number {
  let spent = 0
  for (const [pid, micros] of after) spent += micros - (before.get(pid) ?? 0)
  return spent
}

const rows: {
  name: string
  rps: number
  p50: number
  p99: number
  bad: number
  perPush: string
  cpu?: number
  /** The load generator's (this process's) CPU per request, µs. */
  gen?: number
  /** PostgreSQL's CPU per request, µs (PostgreSQL targets and pgbench). */
  db?: number
  /** CPU of the PostgreSQL backends serving the target alone (by PGAPPNAME), per request, µs. */
  backends?: number
  /** The target, and its pushes per statement of each batched kind (claims, check-ins, replies). */
  target?: string
  batches?: Record<string, number>
  /** BENCH_ROUNDS > 1: req/s of each round, and the median of the per-round ratios to the first. */
  rounds?: number[]
  ratio?: number
}[] = []
// [row, target name (BENCH_TARGETS), server scenario (bench/server.ts), env]
const targets: [string, string, string, Record<string, string>][] = [
  ['(a) Hono hello-world', 'hello', 'hello', {}],
  ['(a″) node:http hello-world, no framework', 'hello-raw', 'hello-raw', {}],
  ['(a′) hello-world that reads the same 64 KB body, 401', 'hello-read', 'hello-read', {}],
  [
    '(d) refused unauthenticated 64 KB push: plaintext to a safe account (401 from the query)',
    'refused-unsigned',
    'memory',
    {},
  ],
  ['(d) refused unauthenticated 64 KB push: wrong msg_signature (401)', 'refused', 'memory', {}],
  [`(b) safe-mode push 「${content}」, encrypted reply, no DB`, 'memory', 'memory', {}],
  ['(e) node-webot/wechat 2.1 on Express 4, same push, same reply', 'webot', 'webot', {}],
  [
    '(g) bare push: node:http + node:crypto + one fast-xml-parser pass, same reply',
    'bare',
    'bare',
    {},
  ],
  [
    '(h) bare push on Hono and @hono/node-server: (g) inside the fixed framework, same reply',
    'bare-hono',
    'bare-hono',
    {},
  ],
  ["(w) quanzi's webhook middleware alone, no dispatch, same reply", 'webhook', 'webhook', {}],
  [
    '(m) (w) plus the least dispatch (b) needs, inline: replay, claim, member, command, deadline',
    'minimal',
    'minimal',
    {},
  ],
  [`(r) retry of an answered push 「${content}」, no DB`, 'retry-memory', 'memory', {}],
  ['(f) floor: (b) plus one `select 1` per push, PGlite', 'floor-pglite', 'floor-pglite', {}],
  [`(c) safe-mode push 「${content}」 with the database, PGlite`, 'pglite', 'pglite', {}],
  [`(r) retry of an answered push 「${content}」, PGlite`, 'retry-pglite', 'pglite', {}],
]
const admin = await pgReachable()
const schema = `bench_${Date.now().toString(36)}`
if (admin) {
  await admin.query(`create schema ${schema}`)
  targets.push([
    '(f) floor: (b) plus one `select 1` per push, PostgreSQL',
    'floor-postgres',
    'floor-postgres',
    { BENCH_SCHEMA: schema },
  ])
  targets.push([
    `(c) safe-mode push 「${content}」 with the database, PostgreSQL`,
    'postgres',
    'postgres',
    { BENCH_SCHEMA: schema },
  ])
  targets.push([
    "(s) (b) writing (c)'s rows, the claim's set-based a batch at a time, PostgreSQL",
    'writes-postgres',
    'writes-postgres',
    { BENCH_SCHEMA: schema },
  ])
  targets.push([
    `(r) retry of an answered push 「${content}」, PostgreSQL`,
    'retry-postgres',
    'postgres',
    { BENCH_SCHEMA: schema },
  ])
  // The same with every statement unnamed (DATABASE_STATEMENT_CACHE=0): as before prepared
  // statements, for a same-run comparison.
  for (const [name, target] of [
    [`(c) safe-mode push 「${content}」 with the database, PostgreSQL, unprepared`, 'postgres'],
    [`(r) retry of an answered push 「${content}」, PostgreSQL, unprepared`, 'retry-postgres'],
  ] as const)
    targets.push([
      name,
      `${target}-unprepared`,
      'postgres',
      { BENCH_SCHEMA: schema, DATABASE_STATEMENT_CACHE: '0' },
    ])
}

// (e) answers what (b) answers: learnt from a (b) server before the runs.
const sameReply = ['webot', 'bare', 'bare-hono', 'webhook', 'minimal']
if (sameReply.some((t) => wanted.includes(t))) {
  const { child, lines, port } = await start('memory')
  const { reply } = await retryPush(port)
  await stop(child, lines)
  for (const t of targets) if (sameReply.includes(t[1])) t[3].BENCH_REPLY = reply
}

const variant = process.env.BENCH_VARIANT?.split(' ').filter(Boolean) ?? []
const variantEnv = Object.fromEntries(
  variant.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split('=') as [string, string]),
)
const variantFlags = variant.filter((w) => !/^[A-Z_]+=/.test(w))
const runs = targets
  .filter((t) => wanted.includes(t[1]))
  .flatMap(([name, target, scenario, env]) => [
    { name, target, scenario, env, flags: [] as string[] },
    ...(variant.length
      ? [
          {
            name: `${name}, with ${variant.join(' ')}`,
            target,
            scenario,
            env: { ...env, ...variantEnv },
            flags: variantFlags,
          },
        ]
      : []),
  ])
/**
 * CPU time so far of the PostgreSQL backends serving `appName` (pg_stat_activity; the server's
 * pool connects with PGAPPNAME), by pid: the target's own share of the database, without the other
 * work PostgreSQL does on the machine meanwhile (its background writers, other clients).
 */
async function backendMicros(appName: string): Promise<Map<number, number>> {
  const out = new Map<number, number>()
  if (!admin) return out
  const { rows } = await admin.query<{ pid: number }>(
    'select pid from pg_stat_activity where application_name = $1',
    [appName],
  )
  for (const { pid } of rows) {
    const micros = cpuMicros(pid)
    if (micros !== undefined) out.set(pid, micros)
  }
  return out
}

type Run = (typeof runs)[number]
/** One measurement of a target: throughput, latency and CPU per request. */
type Slice = Awaited<ReturnType<typeof load>> & {
  cpu?: number
  gen: number
  db?: number
  backends?: number
}
/** A target's server, started and warmed up. */
type Live = Awaited<ReturnType<typeof open>>
/** A target's measurements over the rounds, and what its servers counted (one, or one a round). */
interface Tally {
  run: Run
  index: number
  slices: Slice[]
  /** Pushes sent so far: the next ones' senders continue from here. */
  next: number
  /** Requests its servers answered, warm-ups included (what `queries` counts over). */
  total: number
  queries: number
  kinds: Record<string, number>
}

/**
 * Pushes prepared per second of load: more than any target answers (the bare one up to 14,300
 * req/s, (b) up to 11,700, session 41), so no push repeats a MsgId — a repeat is a duplicate,
 * answered without its handler, and a note says how many there were.
 */
const PUSHES_PER_SECOND = 20_000
/** Most two-second passes a warm-up makes to reach every sender once (see `open`). */
const WARM_UP_PASSES = 10

/** The targets answered 401 on purpose: (d) and (a′). */
const REFUSED_TARGETS = ['refused', 'refused-unsigned', 'hello-read']

/**
 * What a target is sent for `duration` seconds, its timestamps fresh: nothing ((a): autocannon's
 * own request), one request repeated ((d), (r)), or a fresh push per request from `offset` on.
 */
async function requests(
  target: string,
  port: number,
  duration: number,
  run: string,
  offset: number,
): Promise<PreparedPush[] | null> {
  if (target === 'hello' || target === 'hello-raw') return null
  if (target === 'refused' || target === 'hello-read') return [await refusedPush(port)]
  if (target === 'refused-unsigned') return [await refusedPush(port, false)]
  if (target.startsWith('retry-')) return [(await retryPush(port)).push]
  return prepare(port, PUSHES_PER_SECOND * duration, run, offset)
}

/**
 * Starts a target's server and warms it up. A push target's pushes are prepared for each
 * measurement just before it (`measure`): their timestamps must be within the server's freshness
 * window (300 s) when sent, and with several targets and rounds the whole run lasts longer.
 */
async function open(tally: Tally) {
  const { run, index } = tally
  const { name, target, scenario, env, flags } = run
  const appName = `quanzi-bench-${process.pid}-${index}`
  const { child, lines, port } = await start(scenario, { ...env, PGAPPNAME: appName }, flags)
  const pushes = await requests(target, port, 2, `${target}${index}`, tally.next)
  // (e) and (g) answer a text learnt from (b): checked once, so they are not faster by being wrong.
  if (env.BENCH_REPLY !== undefined) {
    const [check] = await prepare(port, 1, `check${index}`)
    const answer = await createPusher({ url: '', account: SAFE_ACCOUNT }).send(check!)
    if (answer.reply?.Content !== env.BENCH_REPLY)
      throw new Error(`${name} answered ${answer.status} ${JSON.stringify(answer.reply)}`)
  }
  // warm-up on two seconds' worth (warm-up pushes must not repeat either), and on until each of
  // the run's senders has pushed once to this server, for at most WARM_UP_PASSES passes of two
  // seconds: the measurements are of returning members, as most pushes are — a first push also
  // makes the member and pays the day's login, and a slow target's first rounds measured mostly
  // those (PGlite's first round cost 2.4 x its fifth a push, session 45). A run of new members
  // (bench:checkin's 100,000,000 senders) warms up two seconds, as before.
  const from = tally.next
  let warmPushes = pushes
  for (let pass = 1; ; pass++) {
    const warm = await load(port, warmPushes, 2)
    tally.next += warm.sent
    tally.total += warm.total
    if (child.exitCode !== null || warm.total === 0)
      throw new Error(`${name}: the server stopped answering during the warm-up`)
    if (!warmPushes || warmPushes.length <= 1) break
    // covered, or out of passes, or more senders than the passes could ever reach
    if (tally.next - from >= members || pass >= WARM_UP_PASSES) break
    if (members > WARM_UP_PASSES * warmPushes.length) break
    warmPushes = await requests(target, port, 2, `${target}${index}`, tally.next)
  }
  if (maintain && ['postgres', 'pglite', 'writes-postgres'].includes(scenario)) {
    child.kill('SIGUSR2')
    const { value } = await lines.next()
    console.error(`${name}: after the warm-up, ${value}`)
  }
  return { appName, child, lines, port }
}

/** Measures a target once for BENCH_SECONDS, on pushes none of its measurements sent before. */
async function measure(live: Live, tally: Tally): Promise<Slice> {
  const { child, appName } = live
  const { run } = tally
  const pushes = await requests(
    run.target,
    live.port,
    seconds,
    `${run.target}${tally.index}`,
    tally.next,
  )
  const backendsBefore = await backendMicros(appName)
  const cpuBefore = cpuMicros(child.pid)
  const genBefore = process.cpuUsage()
  const dbBefore =
    run.env.BENCH_SCHEMA || run.target.includes('postgres') ? postgresMicros() : undefined
  const r = await load(live.port, pushes)
  tally.next += r.sent
  tally.total += r.total
  // A push target answers every push 200: anything else means the bench, not the server, is wrong
  // (a stale timestamp, a wrong signature), and its req/s would be those refusals'.
  if (pushes && !REFUSED_TARGETS.includes(run.target) && r.bad > 0)
    console.warn(`  warning: ${run.name}: ${r.bad} of ${r.total} requests were not answered 200`)
  const cpuAfter = cpuMicros(child.pid)
  const genUsage = process.cpuUsage(genBefore)
  const gen = (genUsage.user + genUsage.system) / r.total
  const dbAfter = dbBefore === undefined ? undefined : postgresMicros()
  const backendsAfter = await backendMicros(appName)
  const backends =
    backendsAfter.size > 0 ? cpuSpent(backendsBefore, backendsAfter) / r.total : undefined
  const db = dbAfter === undefined ? undefined : cpuSpent(dbBefore!, dbAfter) / r.total
  const cpu =
    cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / r.total : undefined
  const slice = { ...r, cpu, gen, db, backends }
  tally.slices.push(slice)
  if (rounds > 1) console.log(`  ${run.name}, round ${tally.slices.length}: ${line(slice)}`)
  return slice
}

/** A target's figures as printed: one measurement, or the medians of its rounds. */
type Figures = Omit<Slice, 'sent'>

const line = (r: Figures) =>
  `${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx/errors ${r.bad}, server CPU ${r.cpu?.toFixed(0) ?? '–'} µs/request, load generator ${r.gen.toFixed(0)} µs, PostgreSQL ${r.db?.toFixed(0) ?? '–'} µs (its backends ${r.backends?.toFixed(0) ?? '–'} µs)`

/** The median of the defined values (undefined when there are none). */
function median(values: (number | undefined)[]): number | undefined {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Stops a target's server, adding what it counted to the target's tally. */
async function shut(live: Live, tally: Tally) {
  const { queries, kinds } = await stop(live.child, live.lines)
  tally.queries += queries
  for (const [kind, n] of Object.entries(kinds ?? {}))
    tally.kinds[kind] = (tally.kinds[kind] ?? 0) + n
}

/** Records a target's row: its one measurement, or the medians of its rounds. */
function record(tally: Tally, first: Tally) {
  const { run, slices, queries, kinds, total } = tally
  const perPush = queries > 0 ? (queries / total).toFixed(1) : '–'
  // Pushes per statement of each batched kind (claims, check-ins, reply stores), where it ran.
  const batches = Object.fromEntries(
    Object.entries(kinds)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => [kind, total / n]),
  )
  const pick = (f: (r: Slice) => number | undefined) => median(slices.map(f))
  const r: Figures =
    slices.length === 1
      ? slices[0]!
      : {
          rps: pick((r) => r.rps)!,
          p50: pick((r) => r.p50)!,
          p99: pick((r) => r.p99)!,
          bad: slices.reduce((sum, r) => sum + r.bad, 0),
          total: slices.reduce((sum, r) => sum + r.total, 0),
          cpu: pick((r) => r.cpu),
          gen: pick((r) => r.gen)!,
          db: pick((r) => r.db),
          backends: pick((r) => r.backends),
        }
  const ratio =
    slices.length > 1 ? median(slices.map((s, i) => s.rps / first.slices[i]!.rps)) : undefined
  const { name, target } = run
  rows.push({
    name,
    ...r,
    perPush,
    target,
    batches,
    ...(slices.length > 1 ? { rounds: slices.map((s) => s.rps), ratio } : {}),
  })
  console.log(
    `${name}: ${slices.length > 1 ? `median of ${slices.length} rounds (${slices.map((s) => s.rps.toFixed(0)).join(' / ')} req/s; × the first target ${ratio!.toFixed(2)}), ` : ''}${line(r)}, statements/push ${perPush}`,
  )
}

const tallies: Tally[] = runs.map((run, index) => ({
  run,
  index,
  slices: [],
  next: 0,
  total: 0,
  queries: 0,
  kinds: {},
}))
/** Every other round in reverse order: no target is always measured in the same place. */
const inTurn = (round: number) => (round % 2 === 1 ? [...tallies].reverse() : tallies)
if (rounds === 1 || fresh) {
  // One target at a time: no other target's server is alive while one is measured. With
  // BENCH_FRESH=1 each round starts every server anew: one process's luck (V8's optimising
  // decisions, where its memory lies) is not every round's.
  for (let round = 0; round < rounds; round++)
    for (const tally of inTurn(round)) {
      const live = await open(tally)
      await measure(live, tally)
      await shut(live, tally)
      // One round: its row at once, as each target ends (a later target's failure keeps it).
      if (rounds === 1) record(tally, tallies[0]!)
    }
} else {
  const lives = new Map<Tally, Live>()
  for (const tally of tallies) lives.set(tally, await open(tally))
  for (let round = 0; round < rounds; round++)
    for (const tally of inTurn(round)) await measure(lives.get(tally)!, tally)
  for (const [tally, live] of lives) await shut(live, tally)
}
if (rounds > 1) for (const tally of tallies) record(tally, tallies[0]!)

/** One pgbench run of `seconds` with the bench's connections: transactions/s and mean latency. */
function pgbench(args: string[], env: Record<string, string> = {}) {
  const out = execFileSync(
    'pgbench',
    [
      ...pgHost,
      '-c',
      env.BENCH_PGBENCH_CLIENTS ?? String(connections),
      '-j',
      '2',
      '-T',
      String(seconds),
      ...args,
    ],
    { encoding: 'utf8', env: { ...process.env, ...env } },
  )
  return {
    tps: Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0),
    latency: Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? Number.NaN),
  }
}

if (process.env.BENCH_PGBENCH === '1') {
  // pgbench -N (simple updates, no branch contention) in its own database, same machine, same
  // run; each workload twice: statements sent unnamed and parsed each time (`-M simple`, what the
  // app did before prepared statements) and prepared once per connection (`-M prepared`).
  const modes = ['simple', 'prepared'] as const
  execFileSync('psql', [...pgHost, '-qc', 'drop database if exists quanzi_pgbench', 'test'])
  execFileSync('psql', [...pgHost, '-qc', 'create database quanzi_pgbench', 'test'])
  execFileSync('pgbench', [...pgHost, '-i', '-q', '-s', '10', 'quanzi_pgbench'], {
    stdio: 'ignore',
  })
  const plain = modes.map((mode) => pgbench(['-N', '-M', mode, 'quanzi_pgbench']))
  execFileSync('psql', [...pgHost, '-qc', 'drop database quanzi_pgbench', 'test'])
  modes.forEach((mode, i) => {
    const { tps, latency } = plain[i]!
    rows.push({
      name: `pgbench -N -M ${mode}, ${connections} clients (transactions/s)`,
      rps: tps,
      p50: latency,
      p99: Number.NaN,
      bad: 0,
      perPush: '5',
    })
    console.log(`pgbench -N -M ${mode}: ${tps.toFixed(0)} tps, latency average ${latency} ms`)
  })

  if (admin && content === '签到') {
    /**
     * One pgbench run of a check-in script in the bench's migrated schema: a row of the table and a
     * line, in pushes/s (`perTransaction` pushes a transaction of the script) and × pgbench -N.
     */
    const run = (
      name: string,
      script: string,
      o: {
        mode?: (typeof modes)[number]
        perTransaction?: number
        clients?: number
        perPush: string
      },
    ) => {
      const mode = o.mode ?? 'prepared'
      const perTransaction = o.perTransaction ?? 1
      const clients = o.clients ?? connections
      const { tps, latency } = pgbench(['-n', '-M', mode, '-f', script, 'test'], {
        PGOPTIONS: `-c search_path=${schema}`,
        BENCH_PGBENCH_CLIENTS: String(clients),
      })
      const pushes = tps * perTransaction
      rows.push({
        name: `pgbench -M ${mode}, ${name}, ${clients} clients (pushes/s)`,
        rps: pushes,
        p50: latency,
        p99: Number.NaN,
        bad: 0,
        perPush: o.perPush,
      })
      console.log(
        `pgbench -M ${mode} ${name}: ${pushes.toFixed(0)} pushes/s (${(pushes / plain[modes.indexOf(mode)]!.tps).toFixed(2)}× pgbench -N -M ${mode}), latency average ${latency} ms${perTransaction > 1 ? ' per batch' : ''}`,
      )
    }
    // The database's own ceiling for this work: the three statements of a first check-in (receive,
    // check-in, reply store) from pgbench, no Node in the path, in the bench's migrated schema.
    const script = writeCheckinScript()
    for (const mode of modes) run('the 3 check-in statements alone', script, { mode, perPush: '3' })
    // The same three statements as the app runs them under this load: batched as its (c)
    // PostgreSQL target batched them in this run (pushes per statement of each kind, counted in the
    // server), all three at the smallest of the three sizes (the others then cost pgbench more
    // statements than the app), with as many pushes in flight as the app's connections (clients ×
    // batch ≈ connections).
    const app = rows.find((r) => r.target === 'postgres' && r.batches?.checkin)
    const batch = app && Math.max(1, Math.round(Math.min(...Object.values(app.batches!))))
    // How a batched script runs: as many pushes a transaction as the app's statements carried.
    const batched = batch && {
      perTransaction: batch,
      clients: batchedClients(connections, batch),
      perPush: '–',
    }
    if (app && batched) {
      console.log(
        `(c) PostgreSQL pushes per statement: ${Object.entries(app.batches!)
          .map(([kind, n]) => `${kind} ${n.toFixed(1)}`)
          .join(', ')}`,
      )
      run(
        `the 3 check-in statements batched as the app's (${batch} pushes per statement)`,
        writeBatchedCheckinScript(batch),
        { ...batched, perPush: (3 / batched.perTransaction).toFixed(1) },
      )
    }
    if (process.env.BENCH_FLOOR === '1') {
      // The floors batched as the statements were, first with the rows the product adds — the
      // points lots (their trigger, still in place here) and the analytics fact: what set-based
      // statements would write.
      if (batched)
        run(
          `the floor in the app's 3 transactions, + lots + member_days, batched by ${batch}`,
          writeBatchedFloorScript(batch, { facts: true }),
          batched,
        )
      // The floor: the least a first check-in must write, plain SQL, no lots (their trigger is
      // dropped from the bench's schema, which nothing uses after this), -M prepared like the app.
      await admin!.query(`drop trigger points_lots_sync on ${schema}.points_ledger`)
      const floors = writeFloorScripts()
      run("the floor in the app's 3 transactions", floors.shaped, { perPush: '–' })
      run('the floor in 1 transaction', floors.single, { perPush: '–' })
      if (batched)
        run(
          `the floor in the app's 3 transactions, batched by ${batch}`,
          writeBatchedFloorScript(batch),
          batched,
        )
    }
  }
}
if (admin) {
  await admin.query(`drop schema ${schema} cascade`)
  await admin.end()
}
serverBundle.remove()

const base = rows[0]!.rps
// The last column: what two fully busy cores could serve at the CPU per request measured (server +
// load generator + PostgreSQL) — the machine's ceiling for that target, not a target itself.
console.log(
  `\n| target | req/s | × (a) | p50 ms | p99 ms | non-2xx | statements/push | server CPU µs/request | load generator µs | PostgreSQL µs | its backends µs | 2-core ceiling req/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
)
const fixed = (v: number | undefined) => v?.toFixed(0) ?? '–'
for (const r of rows) {
  const all = r.cpu === undefined ? undefined : r.cpu + (r.gen ?? 0) + (r.db ?? 0)
  console.log(
    `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.ratio ?? r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${r.bad} | ${r.perPush} | ${fixed(r.cpu)} | ${fixed(r.gen)} | ${fixed(r.db)} | ${fixed(r.backends)} | ${all ? fixed(2_000_000 / all) : '–'} |`,
  )
}
