/**
 * What one safe-mode 「帮助」 push from a returning member writes on PostgreSQL (issue #20 target 3),
 * counted, not estimated.
 *
 *   npm run bench:push-writes      # BENCH_MEMBERS=200 BENCH_PUSHES=2000 BENCH_CONCURRENCY=20
 *
 * Serves the app in-process on a throw-away schema (`bench_pw_*`) as the (c) target does (the safe
 * account, 「帮助」), first one push from each of BENCH_MEMBERS members (new members: the warm-up,
 * not counted), then VACUUM ANALYZE (what the maintenance job does), then BENCH_PUSHES pushes from
 * the same members — returning, the same day, as most of (c)'s pushes are — BENCH_CONCURRENCY at
 * a time, so claims and replies batch as under load. Each phase runs on a pool of its own, closed
 * before the counts are read (a backend's table statistics are flushed when it exits). Prints per
 * push, from pg_stat_user_tables: rows inserted and updated per table (HOT updates apart: they add
 * no index entry), the index entries written (an upper bound where an index is partial), and the
 * WAL the run wrote (`pg_current_wal_lsn()` before and after: the whole cluster's, so exact only on
 * a server nothing else writes to). Where the database has pg_stat_statements (a server started
 * with it preloaded: bench/README.md, session 29), also each statement's calls, WAL bytes and
 * records, full-page images and execution time per push. BENCH_WALDUMP=<the server's pg_wal
 * directory> (a server on this machine) also prints `pg_waldump --stats=record` over the run's
 * WAL: every heap and index record by kind — the exact index entries (Btree INSERT_LEAF). Also the
 * CPU of the measured phase's PostgreSQL backends per push (/proc, when the server is on this
 * machine) and the claims' rows a page. BENCH_SETUP_SQL: statements run in the schema after the
 * migrations (an experiment, e.g. another fillfactor).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { sql } from 'kysely'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { nodeCrypto } from '../src/node-crypto.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT, startServer } from '../test/server.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const members = Number(process.env.BENCH_MEMBERS ?? 200)
const pushes = Number(process.env.BENCH_PUSHES ?? 2000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 20)
const text = process.env.BENCH_TEXT ?? '帮助'
const keep = process.env.BENCH_KEEP === '1'

const schema = `bench_pw_${Date.now().toString(36)}`
const admin = postgresDatabase(url, { max: 1 })
await sql`create schema ${sql.id(schema)}`.execute(admin)

/** utime + stime of a process so far, µs (Linux /proc, 100 Hz); undefined where unreadable. */
function cpuMicros(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}

/**
 * Sends `count` pushes from the members, `concurrency` at a time, through a fresh app and pool;
 * returns the CPU its PostgreSQL backends spent on them, µs (the pool's connections opened first
 * and found by their application name; undefined where the server's /proc is not this machine's).
 */
async function phase(count: number): Promise<number | undefined> {
  const app = `${schema}_${count}`
  process.env.PGAPPNAME = app
  const db = postgresDatabase(url, { schema })
  // every connection of the pool open (and its start-up CPU spent) before the pushes
  await Promise.all(Array.from({ length: 10 }, () => sql`select pg_sleep(0.05)`.execute(db)))
  delete process.env.PGAPPNAME
  const pids = (
    await sql<{
      pid: number
    }>`select pid from pg_stat_activity where application_name = ${app}`.execute(admin)
  ).rows.map((r) => r.pid)
  // sampled as the run goes: the pool closes a connection idle for 10 s, and its process with it
  const first = new Map(pids.map((pid) => [pid, cpuMicros(pid)]))
  const last = new Map(first)
  const sample = () => {
    for (const pid of pids) {
      const micros = cpuMicros(pid)
      if (micros !== undefined) last.set(pid, micros)
    }
  }
  const sampler = setInterval(sample, 200)
  const server = await startServer(db)
  const wx = createPusher({
    url: `${server.url}/wechat`,
    account: SAFE_ACCOUNT,
    crypto: nodeCrypto,
  })
  let next = 0
  let failed = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const r = await wx.text(`o_bench_writes_${i % members}`, text)
        if (r.status !== 200 || !r.reply) failed++
      }
    }),
  )
  await new Promise((r) => setTimeout(r, 300)) // replies stored after the answer settle
  sample()
  clearInterval(sampler)
  await server.close()
  await db.destroy()
  if (failed) throw new Error(`${failed} of ${count} pushes were not answered: fix the bench`)
  if (pids.length === 0 || [...first.values()].includes(undefined)) return undefined
  return pids.reduce((sum, pid) => sum + last.get(pid)! - first.get(pid)!, 0)
}

interface TableStats {
  relname: string
  ins: number
  upd: number
  hot: number
  del: number
  idx: number
}
const stats = () =>
  sql<TableStats>`
    select t.relname, t.n_tup_ins::int as ins, t.n_tup_upd::int as upd,
      t.n_tup_hot_upd::int as hot, t.n_tup_del::int as del,
      (select count(*)::int from pg_index i where i.indrelid = t.relid) as idx
    from pg_stat_user_tables t where t.schemaname = ${schema}`
    .execute(admin)
    .then((r) => r.rows)
const statementsAvailable =
  await sql`select 1 from pg_extension where extname = 'pg_stat_statements'`
    .execute(admin)
    .then((r) => r.rows.length > 0)
const lsn = () =>
  sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`
    .execute(admin)
    .then((r) => r.rows[0]!.lsn)

try {
  const db = postgresDatabase(url, { schema, max: 2 })
  await migrateToLatest(db)
  // BENCH_SETUP_SQL: statements run in the schema after the migrations (an experiment's change)
  if (process.env.BENCH_SETUP_SQL) await sql.raw(process.env.BENCH_SETUP_SQL).execute(db)
  await db.destroy()
  await phase(members)
  await sql
    .raw(
      `vacuum analyze ${schema}.inbound_events, ${schema}.members, ${schema}.replay_claims, ${schema}.member_days`,
    )
    .execute(admin)
  // a fresh checkpoint, so the run's full-page images are its own (only with BENCH_WALDUMP: a
  // server of one's own, not a shared one)
  if (process.env.BENCH_WALDUMP) await sql`checkpoint`.execute(admin)
  await new Promise((r) => setTimeout(r, 600))
  const before = await stats()
  if (statementsAvailable) await sql`select pg_stat_statements_reset()`.execute(admin)
  const lsnBefore = await lsn()
  const backends = await phase(pushes)
  const lsnAfter = await lsn()
  await new Promise((r) => setTimeout(r, 600))
  const after = await stats()
  const wal = await sql<{ b: string }>`select ${lsnAfter}::pg_lsn - ${lsnBefore}::pg_lsn as b`
    .execute(admin)
    .then((r) => Number(r.rows[0]!.b))
  let rows = 0
  let entries = 0
  console.log(
    `\n| table (${pushes} 「${text}」 pushes from ${members} returning members, ${concurrency} at a time) | rows inserted | rows updated (of which HOT) | rows deleted | indexes (partial) | index entries written (upper bound) |\n|---|---:|---:|---:|---:|---:|`,
  )
  for (const a of after) {
    const b = before.find((x) => x.relname === a.relname)!
    const [ins, upd, hot, del] = [a.ins - b.ins, a.upd - b.upd, a.hot - b.hot, a.del - b.del]
    if (ins + upd + del === 0) continue
    const partial = (
      await sql<{ n: number }>`select count(*)::int as n from pg_index
        where indrelid = ${`${schema}.${a.relname}`}::regclass and indpred is not null`.execute(
        admin,
      )
    ).rows[0]!.n
    // Each inserted or non-HOT-updated row version gets an entry in every index (a partial one
    // only when its predicate admits the version: an upper bound there; pg_waldump is exact).
    const exact = (ins + upd - hot) * a.idx
    rows += ins + upd
    entries += exact
    const per = (x: number) => (x / pushes).toFixed(2)
    console.log(
      `| ${a.relname} | ${per(ins)} | ${per(upd)} (${per(hot)}) | ${per(del)} | ${a.idx} (${partial}) | ${per(exact)} |`,
    )
  }
  console.log(
    `| **per push** | ${(rows / pushes).toFixed(2)} rows written | | | | ${(entries / pushes).toFixed(2)} |`,
  )
  const { rows: size } = await sql<{ pages: number; n: number }>`
    select pg_relation_size(${`${schema}.inbound_events`}::regclass)::int / 8192 as pages,
      (select count(*)::int from ${sql.table(`${schema}.inbound_events`)}) as n`.execute(admin)
  console.log(
    `\ninbound_events: ${size[0]!.n} rows in ${size[0]!.pages} pages (${(size[0]!.n / size[0]!.pages).toFixed(1)} rows a page)`,
  )
  console.log(
    `\nWAL per push (the cluster's, pg_current_wal_lsn() diff): ${(wal / pushes).toFixed(0)} bytes`,
  )
  if (backends !== undefined)
    console.log(
      `CPU of the pool's PostgreSQL backends per push (/proc, 10 ms ticks): ${(backends / pushes).toFixed(0)} µs`,
    )
  if (process.env.BENCH_WALDUMP) {
    const out = execFileSync(
      'pg_waldump',
      ['--stats=record', '-p', process.env.BENCH_WALDUMP, '-s', lsnBefore, '-e', lsnAfter],
      {
        encoding: 'utf8',
        env: { ...process.env, PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}` },
      },
    )
    console.log('\npg_waldump --stats=record, per push (records, record bytes, FPI bytes):')
    for (const line of out.split('\n')) {
      const m = /^(\S+(?:\/\S+)?)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)/.exec(
        line,
      )
      if (!m || Number(m[2]) < pushes / 50) continue
      const per = (x: string, d: number) => (Number(x) / pushes).toFixed(d)
      console.log(
        `  ${m[1]!.padEnd(28)} ${per(m[2]!, 2).padStart(6)} ${per(m[3]!, 0).padStart(6)} ${per(m[4]!, 0).padStart(6)}`,
      )
    }
  }
  if (statementsAvailable) {
    const { rows: st } = await sql<{
      query: string
      calls: number
      wal_bytes: number
      wal_records: number
      wal_fpi: number
      ms: number
      dirtied: number
      hit: number
    }>`select regexp_replace(query, '\\s+', ' ', 'g') as query, calls::int, wal_bytes::float8 as wal_bytes,
        wal_records::int, wal_fpi::int, total_exec_time as ms, shared_blks_dirtied::int as dirtied,
        shared_blks_hit::int as hit
      from pg_stat_statements where toplevel and dbid = (select oid from pg_database where datname = current_database())
        and wal_records > 0 or (toplevel and calls >= ${pushes / 100})
      order by wal_bytes desc limit 12`.execute(admin)
    console.log(
      '\n| statement (pg_stat_statements, top level) | calls per push | WAL bytes per push | WAL records per push | FPI per push | shared blocks hit per push | dirtied per push | exec µs per push |\n|---|---:|---:|---:|---:|---:|---:|---:|',
    )
    for (const s of st) {
      const per = (x: number, d = 2) => (x / pushes).toFixed(d)
      console.log(
        `| ${s.query.slice(0, 90).replaceAll('|', '\\|')} | ${per(s.calls, 3)} | ${per(s.wal_bytes, 0)} | ${per(s.wal_records)} | ${per(s.wal_fpi)} | ${per(s.hit, 1)} | ${per(s.dirtied)} | ${per(s.ms * 1000, 0)} |`,
      )
    }
  }
} finally {
  if (keep) console.log(`kept schema ${schema}`)
  else await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}
