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
 * push: the ceiling of any push that asks the database once. `writes-postgres` is (b) writing the
 * rows (c) writes — the claim's set-based, a batch at a time (`claimRows`), the reply by the app's
 * own store: what (c) would cost without its per-push PL/pgSQL.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { serve } from '@hono/node-server'
import express from 'express'
import { Hono } from 'hono'
import { type Kysely, sql } from 'kysely'
// @ts-expect-error: node-webot/wechat ships no types
import wechat from 'wechat'
import { databaseInboundStore } from '../src/community/inbound-events.js'
import { CLAIMS_PER_STATEMENT, type PushClaim } from '../src/community/members.js'
import { batcher } from '../src/db/batcher.js'
import { maintainTables } from '../src/db/maintenance.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { openDatabase } from '../src/db/open-database.js'
import { postgresDatabase } from '../src/db/postgres.js'
import type { Database } from '../src/db/schema.js'
import type { InboundMessage } from '../src/wechat/message.js'
import { memoryStores } from '../test/memory-stores.js'
import { SAFE_ACCOUNT, testConfig } from '../test/server.js'
import { sampleAllocations } from './allocations.js'
import { barePushApp, barePushServer } from './bare-push.js'
import { noRowsDatabase } from './no-rows.js'
import { benchApp, leastDispatch, webhookAlone } from './push-apps.js'

/**
 * PGlite as `npm start` opens it (src/db/open-database.ts): a data folder on disk — a throw-away one
 * under node_modules/.cache/quanzi-bench (not the OS temp folder, which may be in memory), removed
 * at exit — copied from the install's template and tuned as the server's is. Not an in-memory
 * PGlite: its file system copies a whole file each time one grows by an eighth, and a push behind
 * a write that grew a table or a WAL file waited up to half a second (bench/README.md, session 45).
 * Without the template (`npm install` makes it) the folder is made by initdb, and left untuned:
 * said on stderr.
 */
async function pgliteAsInstalled() {
  const cache = resolve('node_modules/.cache/quanzi-bench')
  mkdirSync(cache, { recursive: true })
  const dataDir = mkdtempSync(join(cache, 'pglite-'))
  process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }))
  // Ctrl-C reaches the whole process group: exit, so the folder goes too.
  for (const signal of ['SIGINT', 'SIGHUP'] as const) process.on(signal, () => process.exit(130))
  const { db } = await openDatabase({
    dataDir,
    templateDir: resolve('dist/pglite-template'),
    role: 'bench',
    progress: (message) => {
      if (message.includes('initdb')) console.error(`bench server: ${message}`)
    },
  })
  return db
}

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
  ['receive', 'quanzi_receive_batch('],
  ['receive', 'insert into replay_claims'],
  ['checkin', 'quanzi_checkin_day('],
  ['checkin', 'quanzi_checkin_batch('],
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

/** One push's claim for {@link claimRows}. */
interface ClaimRow {
  claim: PushClaim
  message: InboundMessage
  now: Date
}

/**
 * The rows a returning member's text push writes before its handler runs — its replay stamp, its
 * dedupe claim, its member's activity — and what the claim statement reads back (the member row as
 * JSON, whether the sender is a moderator), written for a whole batch by one set-based statement:
 * no PL/pgSQL function called per push, none of `quanzi_receive`'s reads for the day's first
 * action, the follow state or a claim made before (`writes-postgres`: (c)'s writes set-based, a
 * point of comparison for target 3's (c) — not a strict floor: its upsert of a returning member
 * also writes the row-lock record migration 0088 spared (c), and the stand-in store runs too).
 */
async function claimRows(db: Kysely<Database>, batch: ClaimRow[]): Promise<undefined[]> {
  const column = <T>(pick: (r: ClaimRow) => T) => batch.map(pick)
  await sql<{ r: unknown }>`with v as (
      select * from unnest(${column((r) => r.claim.appid)}::text[],
        ${column((r) => r.claim.dedupeKey)}::text[], ${column((r) => r.message.fromUserName)}::text[],
        ${column((r) => r.now.toISOString())}::timestamptz[],
        ${column((r) => r.claim.replay?.timestamp ?? null)}::bigint[],
        ${column((r) => r.claim.replay?.nonce ?? null)}::text[],
        ${column((r) => r.claim.replay?.digest ?? null)}::text[],
        ${column((r) => r.claim.replay?.door ?? null)}::text[], ${column((r) => r.claim.msgType)}::text[],
        ${column((r) => r.claim.event)}::text[])
        as v(appid, dedupe_key, openid, now, ts, nonce, digest, door, msg_type, event)
    ), replay as (
      insert into replay_claims (door, key, ts, nonce, body_digest, created_at)
      select door, appid, ts, nonce, digest, now from v where door is not null
      on conflict do nothing
    ), claim as (
      insert into inbound_events (appid, dedupe_key, openid, msg_type, event, status, received_at)
      select appid, dedupe_key, openid, msg_type, event, 'processing', now from v
      on conflict do nothing
    ), m as (
      insert into members as t (appid, openid, first_seen_at, last_active_at, last_inbound_at)
      select distinct on (appid, openid) appid, openid, now, now, now from v
      order by appid, openid, now desc
      on conflict (appid, openid) do update
        set last_active_at = excluded.last_active_at, last_inbound_at = excluded.last_inbound_at
      returning t.*
    )
    select to_jsonb(m) || jsonb_build_object('moderator', exists(select from moderators d
      where d.channel = 'oa' and d.external_id = m.openid and d.scope = '*')) as r from m`.execute(
    db,
  )
  // The rows come back a member each, not a push each: the stand-in store answers the caller.
  return batch.map(() => undefined)
}

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
  // writes-postgres: (b)'s stores, the push's rows written set-based (see claimRows)
  const writes = scenario === 'writes-postgres'
  const kind = floor ? scenario.slice('floor-'.length) : writes ? 'postgres' : scenario
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
        : await pgliteAsInstalled()
  // PGlite comes migrated from openDatabase (pgliteAsInstalled)
  if (kind === 'postgres' && !floor) await migrateToLatest(db)
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
  const memory = kind === 'memory' || floor || writes ? memoryStores() : undefined
  // The database's part of a floor's claim, before the stand-in store's: (f) one `select 1`;
  // (s) the claim's rows by one set-based statement a batch, in one lane as the bench's (c) claims
  // (its config is the embedded database's: src/app.ts), its reply stored by the app's own store.
  const beforeClaim = floor
    ? async () => {
        await sql`select 1`.execute(counted)
      }
    : writes
      ? batcher((batch: ClaimRow[]) => claimRows(counted, batch), {
          lanes: 1,
          max: CLAIMS_PER_STATEMENT,
        })
      : undefined
  if (memory && beforeClaim) {
    const { receive } = memory.members
    memory.members.receive = async (claim, message, now) => {
      await beforeClaim({ claim, message, now })
      return receive(claim, message, now)
    }
  }
  if (memory && writes) memory.inbound = databaseInboundStore(counted)
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
