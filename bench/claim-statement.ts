/**
 * What a push's claim statement costs the database, and what a migration changes of it: the
 * member store's `receive` (src/community/members.ts: `quanzi_receive` with its replay stamp, the
 * push path's one statement before the handler) for a returning member's text, one push at a
 * time, on PGlite and on PostgreSQL. The figure is CPU per push: on PostgreSQL its one backend's
 * (`/proc/<pid>/schedstat`, the pool held to one connection, commits not waiting for the WAL's
 * flush; PostgreSQL on this machine), on PGlite this process's (the database runs in it; the
 * store's own JavaScript is the same for both schemas). Throughput under load is the webhook
 * bench's (`npm run bench`); this one isolates the statement, so that a change of a few per cent
 * is not lost in the machine's noise.
 *
 * Every push is of the same community day (Asia/Shanghai), set when a measurement starts: a run
 * across that midnight pays the members' daily_login inside one measurement.
 *
 * With `BENCH_WITHOUT=<migration>` (e.g. `0091_push_path_domains`) each round measures the schema
 * at the latest migration and then with that migration's `down` applied (its `up` again after), in
 * alternating order, and prints both and their ratio (the latest migration only: a later one may
 * build on what an earlier one made).
 *
 *   BENCH_WITHOUT=0091_push_path_domains npm run bench:claim-statement
 * Env: BENCH_ROUNDS (6), BENCH_PUSHES (3000 a measurement), BENCH_MEMBERS (500),
 *      BENCH_DATABASES (pglite,postgres), BENCH_DATABASE_URL (PostgreSQL; default the local test
 *      database: a throw-away schema).
 */
import { readFileSync } from 'node:fs'
import { type Kysely, sql } from 'kysely'
import { migrations } from '../migrations/index.js'
import { databaseMemberStore } from '../src/community/members.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import type { Database } from '../src/db/schema.js'
import { dedupeKey, toInboundMessage } from '../src/wechat/message.js'
import { envNumber } from './env-number.js'
import { median } from './median.js'
import { throwawaySchema } from './throwaway-schema.js'

const rounds = envNumber('BENCH_ROUNDS', 6, { min: 1, integer: true })
const pushes = envNumber('BENCH_PUSHES', 3000, { min: 100, integer: true })
const members = envNumber('BENCH_MEMBERS', 500, { min: 1, integer: true })
const databases = (process.env.BENCH_DATABASES ?? 'pglite,postgres').split(',')
const without = process.env.BENCH_WITHOUT
const migration = without ? migrations[without] : undefined
if (without && !migration) throw new Error(`BENCH_WITHOUT=${without}: no such migration`)
// Only the latest can go down and up alone: a later one may build on what an earlier one made.
const latestMigration = Object.keys(migrations).sort().at(-1)
if (without && without !== latestMigration)
  throw new Error(
    `BENCH_WITHOUT=${without}: only the latest migration (${latestMigration}) can be left out`,
  )
const { down: migrateDown, up: migrateUp } = migration ?? {}

const APPID = 'wx_bench_claim'
const TIME_ZONE = 'Asia/Shanghai'
let serial = 0

/** Runs `count` pushes from the bench's members, one at a time; each a new MsgId and nonce. */
async function push(db: Kysely<Database>, count: number): Promise<void> {
  const store = databaseMemberStore(db, { timeZone: TIME_ZONE })
  const now = new Date()
  const timestamp = String(Math.floor(now.getTime() / 1000))
  for (let i = 0; i < count; i++) {
    const n = serial++
    const msgId = String(10n ** 15n + BigInt(n))
    const message = toInboundMessage({
      ToUserName: 'gh_bench',
      FromUserName: `o_bench_claim_${n % members}`,
      CreateTime: timestamp,
      MsgType: 'text',
      Content: '帮助',
      MsgId: msgId,
    })
    const r = await store.receive(
      {
        appid: APPID,
        dedupeKey: dedupeKey(message),
        msgType: 'text',
        event: null,
        replay: { door: 'wechat', timestamp, nonce: `n${n}`, digest: `d${n}` },
      },
      message,
      now,
    )
    if ('duplicate' in r) throw new Error('a new push was taken for a duplicate')
  }
}

/** Runs a migration's `up` or `down` as the Migrator does: in a transaction. */
const asMigrator = (db: Kysely<Database>, step: (db: Kysely<unknown>) => Promise<void>) =>
  (db as unknown as Kysely<unknown>).transaction().execute((trx) => step(trx))

/** CPU µs per push of `count` pushes, as `cpu` reads it (µs so far). */
async function measure(db: Kysely<Database>, cpu: () => number, count: number): Promise<number> {
  const before = cpu()
  await push(db, count)
  return (cpu() - before) / count
}

async function bench(name: string, db: Kysely<Database>, cpu: () => number): Promise<void> {
  await migrateToLatest(db)
  // Every member seen once (returning from then on, the same day), then a warm-up.
  await push(db, members)
  await push(db, Math.min(pushes, 1000))
  const latest: number[] = []
  const down: number[] = []
  for (let round = 0; round < rounds; round++) {
    const order = migration && round % 2 ? ['down', 'latest'] : ['latest', 'down']
    for (const schema of migration ? order : ['latest']) {
      if (schema === 'down') await asMigrator(db, migrateDown!)
      await push(db, 200) // the statement's plans made on this schema
      const micros = await measure(db, cpu, pushes)
      if (schema === 'down') {
        down.push(micros)
        await asMigrator(db, migrateUp!)
      } else latest.push(micros)
      console.log(
        `${name}, round ${round + 1}, ${schema === 'down' ? `without ${without}` : 'latest'}: ${micros.toFixed(1)} µs a push`,
      )
    }
  }
  const line = `${name}: ${median(latest).toFixed(1)} µs a push (median of ${rounds})`
  if (!migration) console.log(line)
  else {
    const ratios = latest.map((l, i) => l / down[i]!)
    console.log(
      `${line}; without ${without}: ${median(down).toFixed(1)} µs; latest ÷ without, per round: ${ratios.map((r) => r.toFixed(2)).join(' / ')} (median ${median(ratios).toFixed(2)})`,
    )
  }
}

if (databases.includes('pglite')) {
  const db = await pgliteDatabase()
  const processMicros = () => {
    const u = process.cpuUsage()
    return u.user + u.system
  }
  try {
    await bench('PGlite (this process)', db, processMicros)
  } finally {
    await db.destroy()
  }
}

if (databases.includes('postgres')) {
  const { db, drop } = await throwawaySchema('bench_claim', { max: 1 })
  try {
    // Commits do not wait for the WAL's flush: its time is the disk's, not the statement's, and
    // it moved a push's backend time by half from one measurement to the next here.
    await sql`set synchronous_commit = off`.execute(db)
    const backendPid = async () =>
      (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid
    const pid = await backendPid()
    // The pid must be this machine's PostgreSQL (not one in a container: another pid namespace).
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('postgres'))
      throw new Error(`pid ${pid} is not a local PostgreSQL backend: its CPU cannot be read here`)
    // Nanoseconds on the CPU so far (the first field); the pool's one connection is this backend.
    const backendMicros = () =>
      Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000
    await bench('PostgreSQL (its backend)', db, backendMicros)
    // The pool's one connection served every measurement (else another backend's CPU was read).
    if ((await backendPid()) !== pid) throw new Error('the connection was replaced: figures void')
  } finally {
    await drop()
  }
}
