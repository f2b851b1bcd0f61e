/**
 * What a first check-in writes on PostgreSQL (issue #20 target 4: rows written and indexes touched
 * per check-in), counted, not estimated.
 *
 *   npm run bench:checkin-writes      # BENCH_CHECKINS=300 by default
 *
 * Runs the three statements of a first 签到 from a new member (the script `npm run bench:checkin`
 * gives pgbench: `quanzi_receive`, the check-in statement, the reply store) BENCH_CHECKINS times, one
 * client, in a throw-away schema (`bench_sp_ci_*`), and prints per check-in, from
 * pg_stat_user_tables: rows inserted and updated per table (HOT updates apart: they add no index
 * entry), the table's indexes, and the index entries written (an upper bound where an index is
 * partial).
 */
import { execFileSync } from 'node:child_process'
import { sql } from 'kysely'
import { migrateToLatest } from '../src/db/migrate.js'
import { writeCheckinScript } from './checkin-script.js'
import { throwawaySchema } from './throwaway-schema.js'

const n = Number(process.env.BENCH_CHECKINS ?? 300)
const url = new URL(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
const { db, drop } = await throwawaySchema('bench_sp_ci')
try {
  await migrateToLatest(db)
  const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]!.s
  const script = writeCheckinScript()
  const stats = () =>
    sql<{ relname: string; ins: number; upd: number; hot: number; idx: number }>`
      select t.relname, t.n_tup_ins::int as ins, t.n_tup_upd::int as upd,
        t.n_tup_hot_upd::int as hot,
        (select count(*)::int from pg_index i where i.indrelid = t.relid) as idx
      from pg_stat_user_tables t where t.schemaname = ${schema}`
      .execute(db)
      .then((r) => r.rows)
  // Function timings (track_functions, set per session: pg_stat_statements is not loaded here).
  const functions = () =>
    // An overloaded function (quanzi_receive's two) is told apart by its number of arguments.
    sql<{ funcid: number; funcname: string; calls: number; total: number; self: number }>`
      select s.funcid, s.funcname || case when count(*) over (partition by s.funcname) > 1
          then ' (' || p.pronargs || ' arguments)' else '' end as funcname,
        s.calls::int, s.total_time as total, s.self_time as self
      from pg_stat_user_functions s join pg_proc p on p.oid = s.funcid
      where s.schemaname = ${schema}`
      .execute(db)
      .then((r) => r.rows)
  const before = await stats()
  const fBefore = await functions()
  execFileSync(
    'pgbench',
    ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres', '-n'].concat([
      '-f',
      script,
      '-c',
      '1',
      '-t',
      String(n),
      url.pathname.slice(1),
    ]),
    {
      stdio: 'ignore',
      env: {
        ...process.env,
        PGOPTIONS: `-c search_path=${schema} -c track_functions=all`,
      },
    },
  )
  await new Promise((r) => setTimeout(r, 1500)) // table statistics are flushed within a second
  const after = await stats()
  let rows = 0
  let entries = 0
  let exactEntries = 0
  console.log(
    `\n| table (${n} check-ins) | rows inserted | rows updated (of which HOT) | indexes (partial) | index entries, upper bound | index entries |\n|---|---:|---:|---:|---:|---:|`,
  )
  for (const a of after) {
    const b = before.find((x) => x.relname === a.relname)!
    const [ins, upd, hot] = [a.ins - b.ins, a.upd - b.upd, a.hot - b.hot].map((x) => x / n) as [
      number,
      number,
      number,
    ]
    if (ins + upd === 0) continue
    const e = (ins + upd - hot) * a.idx
    // A partial index holds only the rows its predicate admits: counted in the table (every row
    // in it was written by this run), once per row however often it was updated.
    const partial = (
      await sql<{ pred: string }>`select pg_get_expr(indpred, indrelid) as pred from pg_index
        where indrelid = ${`${schema}.${a.relname}`}::regclass and indpred is not null`.execute(db)
    ).rows
    let exact = (ins + upd - hot) * (a.idx - partial.length)
    for (const { pred } of partial) {
      const { rows: c } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(
        a.relname,
      )} where ${sql.raw(pred)}`.execute(db)
      exact += c[0]!.n / n
    }
    rows += ins + upd
    entries += e
    exactEntries += exact
    console.log(
      `| ${a.relname} | ${ins.toFixed(2)} | ${upd.toFixed(2)} (${hot.toFixed(2)}) | ${a.idx} (${partial.length}) | ${e.toFixed(2)} | ${exact.toFixed(2)} |`,
    )
  }
  console.log(
    `| per check-in | ${rows.toFixed(2)} rows written | | | ${entries.toFixed(2)} | ${exactEntries.toFixed(2)} |`,
  )
  console.log(
    '\n| function (one client, so no waiting) | calls per check-in | total µs per call | self µs per call |\n|---|---:|---:|---:|',
  )
  const fAfter = await functions()
  for (const f of fAfter.sort((x, y) => y.total - x.total)) {
    const b = fBefore.find((x) => x.funcid === f.funcid) ?? { calls: 0, total: 0, self: 0 }
    const calls = f.calls - b.calls
    if (calls === 0) continue
    console.log(
      `| ${f.funcname} | ${(calls / n).toFixed(2)} | ${(((f.total - b.total) * 1000) / calls).toFixed(0)} | ${(((f.self - b.self) * 1000) / calls).toFixed(0)} |`,
    )
  }
} finally {
  await drop()
}
