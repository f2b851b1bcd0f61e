/** What the database benches share: a throw-away PostgreSQL schema and a timer that prints. */
import { type Kysely, sql } from 'kysely'
import { type PostgresOptions, postgresDatabase } from '../src/db/postgres.js'
import type { Database } from '../src/db/schema.js'

/**
 * Creates a schema `<prefix>_<time>` on BENCH_DATABASE_URL (default: the local test database) and
 * opens a pool on it (`max`, default two); `schema` is its name, `drop()` closes the pool and drops
 * the schema.
 */
export async function throwawaySchema(
  prefix: string,
  options: { log?: PostgresOptions['log']; max?: number } = {},
) {
  const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const schema = `${prefix}_${Date.now().toString(36)}`
  const admin = postgresDatabase(url)
  await sql`create schema ${sql.id(schema)}`.execute(admin)
  const db = postgresDatabase(url, { schema, max: options.max ?? 2, log: options.log })
  return {
    db,
    schema,
    async drop() {
      await db.destroy()
      await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
      await admin.destroy()
    },
  }
}

/** Runs `fn`, prints `name: <seconds> s` and its result, returns the milliseconds. */
export async function timed<T>(name: string, fn: () => Promise<T>): Promise<number> {
  const started = performance.now()
  const result = await fn()
  const ms = performance.now() - started
  const shown = result === undefined ? '' : ` ${JSON.stringify(result)}`
  console.log(`${name}: ${(ms / 1000).toFixed(2)} s${shown}`)
  return ms
}

/**
 * {@link throwawaySchema}, or with BENCH_SCHEMA=<name> a kept one: the schema is created when
 * missing and never dropped, so a dataset generated once (`markGenerated(members)` records it) is
 * reused by later runs — `generated` is the member count an earlier run recorded, or null.
 * BENCH_PROFILE=1: `profile()` prints the statements run since its last call, slowest first.
 */
export async function keptOrThrowawaySchema(prefix: string) {
  const statements: { ms: number; sql: string }[] = []
  const log: PostgresOptions['log'] = process.env.BENCH_PROFILE
    ? (e) => {
        if (e.level === 'query') statements.push({ ms: e.queryDurationMillis, sql: e.query.sql })
      }
    : undefined
  const profile = () => {
    for (const st of statements.sort((a, b) => b.ms - a.ms).slice(0, 8))
      console.log(
        `  ${st.ms.toFixed(0).padStart(7)} ms  ${st.sql.replace(/\s+/g, ' ').slice(0, 110)}`,
      )
    statements.length = 0
  }
  const kept = process.env.BENCH_SCHEMA
  if (!kept) {
    const t = await throwawaySchema(prefix, { log })
    return {
      ...t,
      profile,
      generated: null as number | null,
      markGenerated: async (_n: number) => {},
    }
  }
  const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const admin = postgresDatabase(url)
  await sql`create schema if not exists ${sql.id(kept)}`.execute(admin)
  const db = postgresDatabase(url, { schema: kept, max: 2, log })
  await sql`create table if not exists bench_generated (members integer)`.execute(db)
  const { rows } = await sql<{ members: number }>`select members from bench_generated`.execute(db)
  return {
    db,
    profile,
    generated: rows[0]?.members ?? null,
    async markGenerated(members: number) {
      await sql`insert into bench_generated (members) values (${members})`.execute(db)
    },
    async drop() {
      await db.destroy()
      await admin.destroy()
    },
  }
}

/**
 * `count` members of `appid` (openids `<prefix><n>`) spread as of `now`: joined up to two years
 * ago, active up to 200 days ago, 30 % with purchases, 8 % unfollowed — deterministic, well spread
 * pseudo-random fractions per member (repeatable runs); `points`: a balance (and lifetime total)
 * of up to 500. Then vacuumed and analyzed, as a long-lived database would be.
 */
export async function insertSpreadMembers(
  db: Kysely<Database>,
  o: { appid: string; prefix: string; count: number; now: Date; points?: boolean },
) {
  const now = sql`${o.now}::timestamptz`
  await sql`
    insert into members (appid, openid, subscribed, unsubscribed_at, first_seen_at, last_active_at,
      purchase_count, last_purchased_at, points_balance, points_lifetime)
    select ${o.appid}, ${o.prefix} || g,
      r.u >= 0.08, case when r.u < 0.08 then ${now} - interval '3 days' end,
      ${now} - make_interval(days => (r.j * 730)::int),
      ${now} - make_interval(days => (r.a * 200)::int),
      case when r.p < 0.3 then (r.p * 30)::int else 0 end,
      case when r.p < 0.3 then ${now} - make_interval(days => (r.a * 120)::int) end,
      ${o.points ? sql`(r.a * 500)::int` : sql`0`}, ${o.points ? sql`(r.a * 500)::int` : sql`0`}
    from generate_series(1, ${o.count}::bigint) g,
      lateral (select (g * 7919 % 1000) / 1000.0 u, (g * 104729 % 1009) / 1009.0 j,
        (g * 1299709 % 997) / 997.0 a, (g * 15485863 % 1013) / 1013.0 p) r`.execute(db)
  await sql`vacuum analyze members`.execute(db)
}
