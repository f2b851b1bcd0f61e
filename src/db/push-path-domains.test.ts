/**
 * Migration 0091: the CHECK constraints of `members` and `inbound_events` became domains, so a
 * push's statements no longer re-read and prepare them (bench/README.md, session 42). The rules
 * must be the same: each bad value is refused as before, with nothing written; the way down gives
 * back the table constraints.
 */
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { down, up } from '../../migrations/0091_push_path_domains.js'
import { forEachDatabase } from '../../test/databases.js'
import type { Database } from './schema.js'

const APPID = 'wx_domains'
const now = new Date('2026-12-07T08:00:00Z')

/** Each rule: a column, values it refuses, a value it takes. */
const RULES = [
  { table: 'members', column: 'points_balance', bad: [-1], good: [0, 2_000_000_000] },
  { table: 'members', column: 'points_frozen', bad: [-1], good: [0, 5] },
  { table: 'members', column: 'birth_month', bad: [0, 13], good: [1, 12, null] },
  {
    table: 'members',
    column: 'city',
    bad: ['', 'x'.repeat(21)],
    good: ['上', '海'.repeat(20), null],
  },
  {
    table: 'members',
    column: 'display_name',
    bad: ['', '一二三四五六七八九十一二三四五六七', 'a\nb', 'a\tb'],
    good: ['小', '一二三四五六七八九十一二三四五六', null],
  },
  {
    table: 'inbound_events',
    column: 'status',
    bad: ['done', '', 'Replied'],
    good: ['replied', 'deferred', 'follow_up', 'failed', 'processing'],
  },
] as const

/** The table CHECK constraints `members` and `inbound_events` have: name → definition. */
async function tableChecks(db: Kysely<Database>): Promise<Record<string, string>> {
  const { rows } = await sql<{ name: string; def: string }>`select conname as name,
      pg_get_constraintdef(oid) as def from pg_constraint
    where contype = 'c' and conrelid in (to_regclass('members'), to_regclass('inbound_events'))
    order by 1`.execute(db)
  return Object.fromEntries(rows.map((r) => [r.name, r.def]))
}

/** The five columns' types. */
async function columnTypes(db: Kysely<Database>): Promise<Record<string, string>> {
  const { rows } = await sql<{ name: string; type: string }>`select attname as name,
      format_type(atttypid, atttypmod) as type from pg_attribute
    where attrelid in (to_regclass('members'), to_regclass('inbound_events'))
      and attname in ('points_balance', 'points_frozen', 'birth_month', 'city', 'display_name', 'status')
    order by 1`.execute(db)
  return Object.fromEntries(rows.map((r) => [r.name, r.type]))
}

async function seed(db: Kysely<Database>, openid: string): Promise<void> {
  await db.insertInto('members').values({ appid: APPID, openid, first_seen_at: now }).execute()
  await db
    .insertInto('inbound_events')
    .values({
      appid: APPID,
      dedupe_key: `msg:${openid}`,
      openid,
      msg_type: 'text',
      status: 'processing',
      received_at: now,
    })
    .execute()
}

/** Sets `column` of the seeded rows of `openid` to `value`; the error, if refused. */
async function write(
  db: Kysely<Database>,
  rule: (typeof RULES)[number],
  openid: string,
  value: unknown,
) {
  try {
    await sql`update ${sql.table(rule.table)} set ${sql.ref(rule.column)} = ${value}
      where appid = ${APPID} and openid = ${openid}`.execute(db)
    return undefined
  } catch (error) {
    return error as Error & { code?: string }
  }
}

async function read(db: Kysely<Database>, rule: (typeof RULES)[number], openid: string) {
  const { rows } = await sql<{ v: unknown }>`select ${sql.ref(rule.column)} as v
    from ${sql.table(rule.table)} where appid = ${APPID} and openid = ${openid}`.execute(db)
  return rows[0]?.v
}

/** Every rule refuses each of its bad values (23514, the row unchanged) and takes its good one. */
async function expectRules(db: Kysely<Database>, openid: string): Promise<void> {
  await seed(db, openid)
  for (const rule of RULES) {
    const before = await read(db, rule, openid)
    for (const bad of rule.bad) {
      const error = await write(db, rule, openid, bad)
      expect(error?.message, `${rule.column} = ${JSON.stringify(bad)}`).toMatch(
        /violates check constraint/,
      )
      expect(error?.code).toBe('23514')
      expect(await read(db, rule, openid)).toEqual(before)
    }
    for (const good of rule.good) {
      expect(
        await write(db, rule, openid, good),
        `${rule.column} = ${JSON.stringify(good)}`,
      ).toBeUndefined()
      expect(await read(db, rule, openid)).toEqual(good)
    }
  }
}

forEachDatabase('the value rules of the tables every push writes (migration 0091)', (get) => {
  it('refuses every value the table constraints refused, and changes nothing', async () => {
    await expectRules(get().db, 'o_rules')
  })

  it('keeps no table CHECK on members or inbound_events (each is re-read by every write)', async () => {
    // A table CHECK here costs every push its parse and preparation again (the migration's
    // comment); a new rule on these tables belongs in a domain.
    expect(await tableChecks(get().db)).toEqual({})
  })

  it('goes down to the table constraints with the same rules, and up again', async () => {
    const { db } = get()
    // One table analyzed (with rows: the first test's), the other never
    await sql`analyze inbound_events`.execute(db)
    // As the Migrator runs them: in a transaction (the migration locks both tables first)
    await (db as unknown as Kysely<unknown>).transaction().execute((trx) => down(trx))
    // What migrations 0001–0090 made, word for word
    expect(await tableChecks(db)).toEqual({
      inbound_events_status_check:
        "CHECK ((status = ANY (ARRAY['processing'::text, 'replied'::text, 'deferred'::text, 'follow_up'::text, 'failed'::text])))",
      members_birth_month_check: 'CHECK (((birth_month >= 1) AND (birth_month <= 12)))',
      members_city_check: 'CHECK (((char_length(city) >= 1) AND (char_length(city) <= 20)))',
      members_display_name_check:
        "CHECK ((((char_length(display_name) >= 1) AND (char_length(display_name) <= 16)) AND (display_name !~ '[[:cntrl:]]'::text)))",
      members_points_balance_check: 'CHECK ((points_balance >= 0))',
      members_points_frozen_check: 'CHECK ((points_frozen >= 0))',
    })
    expect(await columnTypes(db)).toEqual({
      birth_month: 'smallint',
      city: 'text',
      display_name: 'text',
      points_balance: 'integer',
      points_frozen: 'integer',
      status: 'text',
    })
    await expectRules(db, 'o_down')
    await (db as unknown as Kysely<unknown>).transaction().execute((trx) => up(trx))
    expect(await tableChecks(db)).toEqual({})
    expect(await columnTypes(db)).toEqual({
      birth_month: 'member_birth_month',
      city: 'member_city',
      display_name: 'member_display_name',
      points_balance: 'member_points',
      points_frozen: 'member_points',
      status: 'inbound_status',
    })
    await expectRules(db, 'o_up')
    // The analyzed table's altered column has statistics again; the other is still unanalyzed
    // (statistics of an empty table would hold PGlite's planner to "empty" as it fills)
    const { rows } = await sql<{ stats: boolean; members: number }>`select
        exists(select from pg_stats where tablename = 'inbound_events' and attname = 'status'
          and schemaname = current_schema()) as stats,
        (select reltuples from pg_class where oid = to_regclass('members'))::float8 as members`.execute(
      db,
    )
    expect(rows[0]).toEqual({ stats: true, members: -1 })
  })
})
