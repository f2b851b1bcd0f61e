/**
 * Statements per push on PostgreSQL (issue #16: "the push path's statements per push unchanged").
 *
 *   npm run bench:push-statements
 *
 * Serves the app in-process on a throw-away schema and counts every statement its pool sends
 * (`pg.Client.prototype.query` wrapped before the pool opens) while one member follows, says
 * hello, checks in and taps a menu item, each push waited for and its background work settled.
 * The same file runs unchanged on a commit before the analytics facts (139eb3d^) for the "before"
 * figure (copy it into a checkout of that commit: `git worktree add /tmp/before 139eb3d^`).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import pg from 'pg'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT, startServer } from '../test/server.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const members = Number(process.env.BENCH_MEMBERS ?? 20)
let count = 0
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
pg.Client.prototype.query = function counted(this: pg.Client, ...args: unknown[]) {
  count++
  return query.apply(this, args)
} as typeof pg.Client.prototype.query

const schema = `bench_ps_${Date.now().toString(36)}`
const admin = postgresDatabase(url)
await sql`create schema ${sql.id(schema)}`.execute(admin)
const db = postgresDatabase(url, { schema, max: 4 })
try {
  await migrateToLatest(db)
  const server = await startServer(db)
  const chat = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
  const pushes: [string, (openid: string) => Promise<unknown>][] = [
    ['subscribe', (o) => chat.event(o, 'subscribe')],
    ['text 你好', (o) => chat.text(o, '你好')],
    ['text 签到 (check-in)', (o) => chat.text(o, '签到')],
    ['menu click', (o) => chat.event(o, 'CLICK', { EventKey: 'MENU_HELP' })],
  ]
  const totals = new Map<string, number>()
  for (let i = 0; i < members; i++) {
    const openid = `o_bench_statements_${i}`
    for (const [name, push] of pushes) {
      await sleep(50)
      const before = count
      await push(openid)
      await sleep(150) // background work after the reply (ledger notices, facts) settles
      totals.set(name, (totals.get(name) ?? 0) + count - before)
    }
  }
  console.log(`\n| push (${members} members) | statements per push |\n|---|---:|`)
  for (const [name, n] of totals) console.log(`| ${name} | ${(n / members).toFixed(2)} |`)
  await server.close()
} finally {
  await db.destroy()
  await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}
