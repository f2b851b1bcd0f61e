/**
 * One bench target in its own process (so the load generator never shares its event loop).
 * Usage: tsx bench/server.ts hello|hello-raw|hello-read|memory|pglite|postgres|webot|bare|bare-hono|webhook|minimal
 * {"port": N} when listening (bench/webhook.ts runs it bundled, as `npm start` runs the server).
 * `hello-read` reads the request body and answers 401: the transport cost of a body. `webot` is
 * node-webot/wechat 2.1 on Express 4 (the classic Node middleware), answering every text with
 * `BENCH_REPLY` — the same reply text quanzi renders; `bare` answers it too, with nothing but
 * node:http, node:crypto and fast-xml-parser (bench/bare-push.ts), `bare-hono` the same work as a
 * Hono app on @hono/node-server, `webhook` quanzi's own webhook middleware (signature, envelope,
 * decryption, the hardening checks, parse, typed message, sealed reply) answering `BENCH_REPLY`
 * with no dispatch — (b) without its dedupe, memo, replay cache, router and timers; `hello-raw` is
 * a node:http hello-world. `minimal` is `webhook` plus the least dispatch (b)'s push needs, written
 * inline with Maps (replay check, dedupe claim, member activity, command lookup, deadline timer,
 * answer stored): what (b) would cost with none of quanzi's dispatch layers, app middleware or
 * route wrappers. `floor-pglite` and `floor-postgres` are (b) plus one `select 1` round trip per
 * push: the ceiling of any push that asks the database once.
 */
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import express from 'express'
import { Hono } from 'hono'
import { sql } from 'kysely'
// @ts-expect-error: node-webot/wechat ships no types
import wechat from 'wechat'
import { maintainTables } from '../src/db/maintenance.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { memoryStores } from '../test/memory-stores.js'
import { SAFE_ACCOUNT, testConfig } from '../test/server.js'
import { sampleAllocations } from './allocations.js'
import { barePushApp, barePushServer } from './bare-push.js'
import { noRowsDatabase } from './no-rows.js'
import { benchApp, leastDispatch, webhookAlone } from './push-apps.js'

/** The PostgreSQL pool's settings (statement cache, size) as the app reads them from the environment. */
function databaseSettings() {
  const pick = (name: string) => (process.env[name] ? { [name]: process.env[name]! } : {})
  const config = testConfig({ ...pick('DATABASE_STATEMENT_CACHE'), ...pick('DATABASE_POOL_MAX') })
  return { statementCache: config.statementCache, max: config.poolMax }
}

const scenario = process.argv[2] ?? 'memory'
// Started by bench/webhook.ts: its pipe on stdin closes when it exits, however it exits.
if (process.env.BENCH_EXIT_WITH_PARENT === '1')
  process.stdin.on('end', () => process.exit(0)).resume()
// BENCH_ALLOC_PROF=<file>: a sampling allocation profile of the whole run, objects the GC has
// already collected included (what `--heap-prof` leaves out), written at SIGTERM; open it in Chrome
// DevTools (Memory → Load) to see which code allocates per request.
const allocations = process.env.BENCH_ALLOC_PROF ? await sampleAllocations(4096) : undefined
async function writeAllocations() {
  if (!allocations) return
  writeFileSync(process.env.BENCH_ALLOC_PROF!, JSON.stringify((await allocations.stop()).profile))
}
let queries = 0
/**
 * The batched statements among them, by kind (claims, check-ins, reply stores): the bench's pgbench
 * mirror of the check-in takes its batch size from these (bench/webhook.ts).
 */
const kinds = { receive: 0, checkin: 0, reply: 0 }
const KIND_MARKS = [
  ['receive', 'quanzi_receive('],
  ['checkin', 'quanzi_checkin_day('],
  ['reply', 'update inbound_events e'],
] as const
type Raw = { kind?: string; sqlFragments?: readonly string[]; parameters?: readonly Raw[] }
/** A raw statement's own text and its nested raw fragments' (e.g. `quanzi_receive`'s call). */
const rawText = (node: Raw): string =>
  node.kind === 'RawNode'
    ? [...(node.sqlFragments ?? []), ...(node.parameters ?? []).map(rawText)].join('')
    : ''
function countKind(node: unknown) {
  const text = rawText(node as Raw)
  for (const [kind, mark] of KIND_MARKS) if (text.includes(mark)) kinds[kind]++
}
let fetchHandler: (req: Request) => Response | Promise<Response>

// The targets that are plain node:http servers, not Hono apps: listened to below, as the others.
const plainServers: Record<string, () => Server> = {
  bare: () => barePushServer(SAFE_ACCOUNT, process.env.BENCH_REPLY ?? 'hello'),
  'hello-raw': () => createServer((_req, res) => res.end('Hello World')),
  webot: () => {
    const reply = process.env.BENCH_REPLY ?? 'hello'
    const app = express()
    app.use(
      '/wechat',
      wechat(
        {
          token: SAFE_ACCOUNT.token,
          appid: SAFE_ACCOUNT.appid,
          encodingAESKey: SAFE_ACCOUNT.aesKey,
        },
        (_req: unknown, res: { reply(text: string): void }) => res.reply(reply),
      ),
    )
    return createServer(app)
  },
}
const plain = plainServers[scenario]

if (plain) {
  const server = plain().listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
  })
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ queries: 0 }))
    server.close(() => process.exit(0))
  })
} else if (scenario === 'hello') {
  fetchHandler = new Hono().post('/wechat', (c) => c.text('Hello World')).fetch
} else if (scenario === 'bare-hono') {
  fetchHandler = barePushApp(SAFE_ACCOUNT, process.env.BENCH_REPLY ?? 'hello').fetch
} else if (scenario === 'webhook') {
  fetchHandler = webhookAlone(process.env.BENCH_REPLY ?? 'hello').fetch
} else if (scenario === 'minimal') {
  fetchHandler = leastDispatch(
    process.env.BENCH_TEXT ?? '帮助',
    process.env.BENCH_REPLY ?? 'hello',
  ).fetch
} else if (scenario === 'hello-read') {
  fetchHandler = new Hono().post('/wechat', async (c) =>
    c.text(`${(await c.req.text()).length}`, 401),
  ).fetch
} else {
  // (b) touches no database at all: the stores are in memory, and a handler's own queries (帮助
  // asks whether the sender is a moderator) are compiled by Kysely and answered with no rows.
  const floor = scenario.startsWith('floor-')
  const kind = floor ? scenario.slice('floor-'.length) : scenario
  const db =
    kind === 'memory'
      ? noRowsDatabase()
      : kind === 'postgres'
        ? postgresDatabase(
            process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
            {
              schema: process.env.BENCH_SCHEMA,
              // As the app reads them: DATABASE_STATEMENT_CACHE=0 for the (c)/(r) "unprepared"
              // targets, DATABASE_POOL_MAX (default the app's) for a pool size to compare.
              ...databaseSettings(),
            },
          )
        : await pgliteDatabase()
  if (kind !== 'memory' && !floor) await migrateToLatest(db)
  // Count every statement the app runs (transaction BEGIN/COMMIT not included).
  const counted =
    kind === 'memory'
      ? db
      : db.withPlugin({
          transformQuery: (args) => {
            queries++
            countKind(args.node)
            return args.node
          },
          transformResult: async (args) => args.result,
        })
  const memory = kind === 'memory' || floor ? memoryStores() : undefined
  if (memory && floor) {
    const { receive } = memory.members
    memory.members.receive = async (claim, message, now) => {
      await sql`select 1`.execute(counted)
      return receive(claim, message, now)
    }
  }
  if (kind !== 'memory' && !floor)
    // BENCH_MAINTAIN=1: the bench asks, after its warm-up, for what the database-maintenance job (or
    // autovacuum) does within minutes on a live server; the answer is one line of output.
    process.on('SIGUSR2', async () => {
      console.log(JSON.stringify({ maintained: await maintainTables(db, { budgetMs: 60_000 }) }))
    })
  fetchHandler = benchApp(counted, memory).fetch
}

if (!plain) {
  const server = serve(
    { fetch: fetchHandler!, port: 0, hostname: '127.0.0.1' },
    (info: AddressInfo) => {
      console.log(JSON.stringify({ port: info.port }))
    },
  )
  process.on('SIGTERM', async () => {
    await writeAllocations()
    console.log(JSON.stringify({ queries, kinds }))
    server.close(() => process.exit(0))
  })
}
