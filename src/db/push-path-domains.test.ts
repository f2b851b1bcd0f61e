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
  { table: 'members', column: 'points_balance', bad: [-1], good: 0 },
  { table: 'members', column: 'points_frozen', bad: [-1], good: 5 },
  { table: 'members', column: 'birth_month', bad: [0, 13], good: 12 },
  { table: 'members', column: 'city', bad: ['', 'x'.repeat(21)], good: '上海' },
  {
    table: 'members',
    column: 'display_name',
    bad: ['', '一二三四五六七八九十一二三四五六七', 'a\nb'],
    good: '一二三四五六七八九十一二三四五六',
  },
  {
    table: 'inbound_events',
    column: 'status',
    bad: ['done', ''],
    good: 'replied',
  },
] as const

/** The table CHECK constraints `members` and `inbound_events` have, by name. */
async function tableChecks(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select conname as name from pg_constraint
    where contype = 'c' and conrelid in (to_regclass('members'), to_regclass('inbound_events'))
    order by 1`.execute(db)
  return rows.map((r) => r.name)
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
    expect(await write(db, rule, openid, rule.good)).toBeUndefined()
    expect(await read(db, rule, openid)).toEqual(rule.good)
  }
}

forEachDatabase('the value rules of the tables every push writes (migration 0091)', (get) => {
  it('refuses every value the table constraints refused, and changes nothing', async () => {
    await expectRules(get().db, 'o_rules')
  })

  it('keeps no table CHECK on members or inbound_events (each is re-read by every write)', async () => {
    // A table CHECK here costs every push its parse and preparation again (the migration's
    // comment); a new rule on these tables belongs in a domain.
    expect(await tableChecks(get().db)).toEqual([])
  })

  it('goes down to the table constraints with the same rules, and up again', async () => {
    const { db } = get()
    await down(db as Kysely<unknown>)
    expect(await tableChecks(db)).toEqual([
      'inbound_events_status_check',
      'members_birth_month_check',
      'members_city_check',
      'members_display_name_check',
      'members_points_balance_check',
      'members_points_frozen_check',
    ])
    await expectRules(db, 'o_down')
    await up(db as Kysely<unknown>)
    expect(await tableChecks(db)).toEqual([])
    await expectRules(db, 'o_up')
  })
})
