/**
 * The check-in's SQL against its floor and pgbench -N, alternated (issue #20 target 4).
 *
 *   npm run bench:checkin-floor      # BENCH_SECONDS=5 BENCH_ROUNDS=3 by default
 *   BENCH_BEFORE=0056_subscribe_accepted_at npm run bench:checkin-floor
 *
 * pgbench only, no Node in the path, 50 clients (BENCH_CONNECTIONS), -M prepared. Workloads, in a
 * rotating order each round so that the machine's other work spreads over all of them:
 *   -N                  pgbench -N, scale 10, in its own database
 *   check-in            the 3 statements of a first 签到 from a new member (bench/checkin-script.ts)
 *   check-in @BEFORE    the same in a schema migrated only up to BENCH_BEFORE (the code before a
 *                       change to the SQL functions, measured in the same run; the scripts
 *                       claim a signed push, so BENCH_BEFORE must be 0020_replay_claims or later)
 *   floor, 3 tx         the least a first check-in must write, plain SQL, in the app's 3
 *                       transactions (claim + member + daily_login; check-in; reply); no lots
 *   floor, 1 tx         the same in one transaction
 *   + lots, + member_days  the 3-transaction floor with the lots trigger, then with the analytics
 *                       fact too: the rows the product adds, still without its functions
 *   batched by B       with BENCH_BATCH=B (default 16; 0: none): the 3 statements as the app
 *                       batches them, B first 签到s a transaction, connections ÷ B clients; @BEFORE
 *                       too, where stand-ins run the per-row functions as the app's batched
 *                       statements did before set-based ones replaced them: `quanzi_checkin_batch`
 *                       runs `quanzi_checkin_day` row by row in a schema older than migration 0093,
 *                       `quanzi_receive_batch` runs `quanzi_receive` push by push in one older
 *                       than 0094
 * Each workload reports pushes (transactions) per second and the CPU its own PostgreSQL backends
 * used per push after the first second (sampled from /proc while pgbench runs, over pgbench's
 * per-second throughput: robust to the machine's other load, where throughput is not). Medians over the rounds, and each round's ratio to the -N of that round.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Migrator, sql } from 'kysely'
import { PARAMS, PER_PUSH } from '../migrations/0094_receive_batch.js'
import { migrations } from '../migrations/index.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'
import {
  batchedClients,
  writeBatchedCheckinScript,
  writeCheckinScript,
  writeFloorScripts,
} from './checkin-script.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const before = process.env.BENCH_BEFORE
const batch = Number(process.env.BENCH_BATCH ?? 16)
const url = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
const host = ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres']
const database = url.pathname.slice(1)
const tag = Date.now().toString(36)

/**
 * What the app's batched check-in statement ran before migration 0093, as a stand-in
 * `quanzi_checkin_batch` for a schema older than it: `quanzi_checkin_day` row by row, in order.
 * PL/pgSQL, so that its statement's plan is kept as the app's prepared statement's was (an SQL
 * function's body is planned anew at every call: until session 48 the stand-ins were, and the
 * @BEFORE figures paid one plan a batch more than the app did).
 */
const PER_ROW_BATCH = `create function quanzi_checkin_batch(
  p_appid text[], p_member_id bigint[], p_now timestamptz[], p_day date[], p_week_start date[],
  p_bonuses jsonb[], p_monthly jsonb[], p_levels jsonb
) returns table (n bigint, outcome jsonb) language plpgsql as $fn$
begin
  return query select u.ord, quanzi_checkin_day(u.appid, u.member_id, u.now, u.day, u.week, u.bonuses,
      u.monthly, p_levels)
    from unnest(p_appid, p_member_id, p_now, p_day, p_week_start, p_bonuses, p_monthly)
      with ordinality u(appid, member_id, now, day, week, bonuses, monthly, ord)
    order by u.ord;
end
$fn$`

/**
 * What the app's batched claim statement ran before migration 0094, as a stand-in
 * `quanzi_receive_batch` for a schema older than it: `quanzi_receive` push by push, in order.
 */
const PER_PUSH_RECEIVE = `create function quanzi_receive_batch(${PARAMS})
returns table (n bigint, outcome jsonb) language plpgsql as $fn$
begin
  return query ${PER_PUSH};
end
$fn$`

/** The stand-ins a schema migrated to `to` needs for the batched script (the functions it lacks). */
const standIns = (to: string) =>
  [to < '0093' ? PER_ROW_BATCH : '', to < '0094' ? PER_PUSH_RECEIVE : '']
    .filter(Boolean)
    .join(';\n')

const admin = postgresDatabase(url.toString())
const schemas: string[] = []
/** A schema migrated to `to` (undefined: the latest), with `after` run in it. */
async function schema(name: string, to?: string, after?: string) {
  const s = `bench_floor_${name}_${tag}`
  await sql`create schema ${sql.id(s)}`.execute(admin)
  schemas.push(s)
  const db = postgresDatabase(url.toString(), { schema: s, max: 1 })
  if (to === undefined) await migrateToLatest(db)
  else {
    const { error } = await new Migrator({
      db,
      provider: { getMigrations: async () => migrations },
      migrationTableSchema: s,
    }).migrateTo(to)
    if (error) throw error
  }
  if (after) await sql.raw(after).execute(db)
  await db.destroy()
  return s
}

/** CPU µs so far of a process (utime + stime at 100 Hz), undefined once it is gone. */
function cpuMicros(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}

/**
 * One pgbench run: pushes/s and its backends' CPU µs per push (`perTransaction` pushes a
 * transaction of the script; `clients` connections, by default BENCH_CONNECTIONS).
 */
async function pgbench(
  args: string[],
  searchPath?: string,
  { clients = connections, perTransaction = 1 } = {},
) {
  const app = `quanzi-floor-${tag}-${Math.random().toString(36).slice(2)}`
  const child = spawn(
    'pgbench',
    [...host, '-n', '-M', 'prepared', '-c', String(clients), '-j', '2', '-P', '1'].concat(
      ['-T', String(seconds)],
      args,
    ),
    {
      env: {
        ...process.env,
        PGAPPNAME: app,
        ...(searchPath ? { PGOPTIONS: `-c search_path=${searchPath}` } : {}),
      },
    },
  )
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
  })
  child.stderr.on('data', (d) => {
    out += d
  })
  const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)))
  // CPU from the first sample after a second (each new backend first compiles the functions and
  // fills its caches, as the app's pooled connections do once) to the last one, as a rate.
  const started = performance.now()
  const cpu = new Map<number, number>()
  const first = new Map<number, number>()
  let window = { from: 0, to: 0 }
  let finished = false
  void done.then(() => {
    finished = true
  })
  while (!finished) {
    const at = (performance.now() - started) / 1000
    const { rows } = await sql<{
      pid: number
    }>`select pid from pg_stat_activity where application_name = ${app}`.execute(admin)
    if (at >= 1) {
      if (window.from === 0) window = { from: at, to: at }
      window.to = at
      for (const { pid } of rows) {
        const micros = cpuMicros(pid)
        if (micros === undefined) continue
        if (!first.has(pid)) first.set(pid, micros)
        cpu.set(pid, micros)
      }
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  if ((await done) !== 0) throw new Error(`pgbench failed: ${out}`)
  let micros = 0
  for (const [pid, last] of cpu) micros += last - (first.get(pid) ?? 0)
  // pgbench -P 1: transactions/s per second of the run; the first second is warm-up
  const steady = [...out.matchAll(/progress: ([\d.]+) s, ([\d.]+) tps/g)]
    .filter((m) => Number(m[1]) > 1)
    .map((m) => Number(m[2]))
  const tps = steady.reduce((a, b) => a + b, 0) / Math.max(steady.length, 1)
  return {
    tps: Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0) * perTransaction,
    cpu: micros / (window.to - window.from) / (tps * perTransaction),
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const pgbenchDb = `quanzi_floor_${tag}`
await sql`create database ${sql.id(pgbenchDb)}`.execute(admin)
try {
  await new Promise<void>((resolve, reject) =>
    spawn('pgbench', [...host, '-i', '-q', '-s', '10', pgbenchDb], { stdio: 'ignore' }).on(
      'exit',
      (code) => (code === 0 ? resolve() : reject(new Error('pgbench -i failed'))),
    ),
  )
  const latest = await schema('latest')
  const floor = await schema('floor', undefined, 'drop trigger points_lots_sync on points_ledger')
  const old = before
    ? await schema('before', before, batch > 0 ? standIns(before) || undefined : undefined)
    : undefined
  const checkin = writeCheckinScript()
  const floors = writeFloorScripts()
  const batched = batch > 0 ? writeBatchedCheckinScript(batch) : undefined
  const inBatches = { clients: batchedClients(connections, batch), perTransaction: batch }
  type Workload = { name: string; run: () => ReturnType<typeof pgbench> }
  /** The check-in statements, one push a transaction and batched, in `schema` (named `@at`). */
  const checkins = (schema: string, at = ''): Workload[] => [
    { name: `check-in statements${at}`, run: () => pgbench(['-f', checkin, database], schema) },
    ...(batched
      ? [
          {
            name: `check-in statements batched by ${batch}${at}`,
            run: () => pgbench(['-f', batched, database], schema, inBatches),
          },
        ]
      : []),
  ]
  const workloads: Workload[] = [
    { name: 'pgbench -N', run: () => pgbench(['-N', pgbenchDb]) },
    ...checkins(latest),
    ...(old ? checkins(old, ` @${before}`) : []),
    { name: 'floor, 3 transactions', run: () => pgbench(['-f', floors.shaped, database], floor) },
    { name: 'floor, 1 transaction', run: () => pgbench(['-f', floors.single, database], floor) },
    {
      name: 'floor, 3 transactions, + lots',
      run: () => pgbench(['-f', floors.shaped, database], latest),
    },
    {
      name: 'floor, 3 transactions, + lots + member_days',
      run: () => pgbench(['-f', floors.facts, database], latest),
    },
  ]
  const results = new Map(workloads.map((w) => [w.name, [] as { tps: number; cpu: number }[]]))
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  console.log(`load average at start: ${load()}`)
  for (let round = 0; round < rounds; round++) {
    const order = workloads.map((_, i) => workloads[(i + round) % workloads.length]!)
    for (const w of order) {
      const r = await w.run()
      results.get(w.name)!.push(r)
      console.log(
        `round ${round + 1}: ${w.name}: ${r.tps.toFixed(0)}/s, ${r.cpu.toFixed(0)} µs CPU/push`,
      )
    }
  }
  console.log(`load average at end: ${load()}`)
  const plain = results.get('pgbench -N')!
  console.log(
    `\n| workload (${connections} clients, -M prepared, ${rounds} × ${seconds} s) | per s, median | × -N (per round) | backend CPU µs per push, median | -N's CPU ÷ this |\n|---|---:|---:|---:|---:|`,
  )
  for (const [name, rs] of results) {
    const ratios = rs.map((r, i) => (r.tps / plain[i]!.tps).toFixed(2)).join(' / ')
    const cpu = median(rs.map((r) => r.cpu))
    console.log(
      `| ${name} | ${median(rs.map((r) => r.tps)).toFixed(0)} | ${ratios} | ${cpu.toFixed(0)} | ${(median(plain.map((r) => r.cpu)) / cpu).toFixed(2)} |`,
    )
  }
} finally {
  await sql`drop database if exists ${sql.id(pgbenchDb)}`.execute(admin)
  for (const s of schemas) await sql`drop schema ${sql.id(s)} cascade`.execute(admin)
  await admin.destroy()
}
