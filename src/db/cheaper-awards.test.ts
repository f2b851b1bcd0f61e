/**
 * Migration 0092: a cheaper award with the same outcomes and the same rules. The level and
 * multiplier an award finds (now a JSON path over `p_levels`) are `levelFor`'s and the level
 * table's, before and after; the points tables' single-column rules (now domains) refuse what
 * they refused, with nothing written; a lot's one foreign key refuses what the two did, and a lot
 * whose member is not its entry's; the way down gives back the constraints word for word.
 */
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { down, up } from '../../migrations/0092_cheaper_awards.js'
import { forEachDatabase } from '../../test/databases.js'
import { LEVELS, levelByKey, levelFor } from '../community/levels.js'
import { changePoints, LEVELS_JSON } from '../community/points-ledger.js'
import type { Database } from './schema.js'

const APPID = 'wx_awards'
const TZ = 'Asia/Shanghai'
const now = new Date('2026-12-07T08:00:00Z')
/** An uncapped rule of the test's own: every award of it is applied. */
const RULE = 'award_test'
const RULE_POINTS = 7

const migrate = (db: Kysely<Database>, step: typeof up) =>
  (db as unknown as Kysely<unknown>).transaction().execute((trx) => step(trx))

async function member(db: Kysely<Database>, openid: string, lifetime: number, level: string) {
  const row = await db
    .insertInto('members')
    .values({
      appid: APPID,
      openid,
      first_seen_at: now,
      points_balance: lifetime,
      points_lifetime: lifetime,
      level,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/**
 * Lifetimes around every level's threshold, each member at a stored level (also one its lifetime
 * does not reach, and one the table does not know): what an award of {@link RULE} gives and the
 * level it reaches, against the level table (`levelFor`, the multiplier of the stored level).
 */
async function expectLevels(db: Kysely<Database>, prefix: string): Promise<void> {
  await sql`insert into point_rules (appid, rule, points, cap_count, cap_period)
    values ('*', ${RULE}, ${RULE_POINTS}, null, null) on conflict do nothing`.execute(db)
  const stored = [...LEVELS.map((l) => l.key), 'unknown']
  const cases = LEVELS.flatMap((l) => [l.min - 1, l.min, l.min + 1])
    .filter((x) => x >= 0)
    .flatMap((lifetime) => stored.map((level) => ({ lifetime, level })))
  // a lifetime just under a threshold that the award crosses, and one it crosses two thresholds at
  cases.push(
    { lifetime: 999 - RULE_POINTS + 1, level: 'bronze' },
    { lifetime: 4_990, level: 'diamond' },
  )
  for (const [i, c] of cases.entries()) {
    const id = await member(db, `${prefix}_${i}`, c.lifetime, c.level)
    const outcome = await changePoints(
      db,
      {
        appid: APPID,
        memberId: id,
        rule: RULE,
        idempotencyKey: `${prefix}:${i}`,
        now,
        timeZone: TZ,
      },
      null,
    )
    const multiplier = LEVELS.find((l) => l.key === c.level)?.multiplier ?? 1
    const delta = RULE_POINTS * multiplier
    const label = `lifetime ${c.lifetime} at ${c.level}`
    expect(outcome, label).toMatchObject({
      status: 'applied',
      delta,
      balance: c.lifetime + delta,
      lifetime: c.lifetime + delta,
      level: levelFor(c.lifetime + delta),
    })
    const row = await db
      .selectFrom('members')
      .select(['points_balance', 'points_lifetime', 'level'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
    expect(row, label).toEqual({
      points_balance: c.lifetime + delta,
      points_lifetime: c.lifetime + delta,
      level: levelFor(c.lifetime + delta).key,
    })
  }
}

/** A new member granted 10 points: its id and its ledger entry's (the trigger made its lot). */
async function granted(db: Kysely<Database>, openid: string) {
  const id = await member(db, openid, 0, 'bronze')
  const change = { appid: APPID, memberId: id, rule: 'grant', now, timeZone: TZ }
  await changePoints(db, { ...change, idempotencyKey: `grant:${openid}` }, 10)
  const { id: entry } = await db
    .selectFrom('points_ledger')
    .select('id')
    .where('member_id', '=', id)
    .executeTakeFirstOrThrow()
  return { id, entry: Number(entry) }
}

/** Sets `column` of a row of `table` to `value`; the error, if refused. */
async function write(
  db: Kysely<Database>,
  table: string,
  column: string,
  id: number,
  value: unknown,
) {
  const key = table === 'points_lots' ? 'ledger_id' : 'id'
  try {
    await sql`update ${sql.table(table)} set ${sql.ref(column)} = ${value}
      where ${sql.ref(key)} = ${id}`.execute(db)
    return undefined
  } catch (error) {
    return error as Error & { code?: string }
  }
}

/** Each single-column rule of the points tables refuses its bad values (23514) and changes nothing. */
async function expectRules(db: Kysely<Database>, openid: string): Promise<void> {
  const { entry } = await granted(db, openid)
  const rules = [
    { table: 'points_ledger', column: 'balance_after', bad: [-1], good: [0, 10] },
    { table: 'points_lots', column: 'points', bad: [0, -1], good: [12, 10] },
    { table: 'points_lots', column: 'remaining', bad: [-1], good: [0, 10] },
    { table: 'points_lots', column: 'expired', bad: [-1], good: [0] },
  ]
  const read = async (table: string) =>
    (
      await sql`select * from ${sql.table(table)} where ${sql.ref(table === 'points_lots' ? 'ledger_id' : 'id')} = ${entry}`.execute(
        db,
      )
    ).rows[0]
  for (const rule of rules) {
    const before = await read(rule.table)
    for (const bad of rule.bad) {
      const error = await write(db, rule.table, rule.column, entry, bad)
      expect(error?.code, `${rule.column} = ${bad}`).toBe('23514')
      expect(await read(rule.table)).toEqual(before)
    }
    for (const good of rule.good)
      expect(await write(db, rule.table, rule.column, entry, good)).toBeUndefined()
  }
}

/** A lot must name an existing entry, and that entry's member (23503, nothing written). */
async function expectLotKeys(db: Kysely<Database>, prefix: string, sameMember: boolean) {
  const { id: a, entry } = await granted(db, `${prefix}_a`)
  const b = await member(db, `${prefix}_b`, 0, 'bronze')
  // The lots trigger made the entry's lot; the lots here are written by hand instead
  await sql`delete from points_lots where ledger_id = ${entry}`.execute(db)
  const lot = (ledger: unknown, memberId: number) =>
    sql`insert into points_lots (ledger_id, appid, member_id, points, remaining, earned_at)
      values (${ledger}, ${APPID}, ${memberId}, 10, 10, ${now})`
      .execute(db)
      .then(
        () => undefined,
        (error: Error & { code?: string }) => error,
      )
  expect((await lot(-1, a))?.code).toBe('23503')
  const other = await lot(entry, b)
  if (sameMember) expect(other?.code).toBe('23503')
  else expect(other).toBeUndefined()
  if (!other) await sql`delete from points_lots where ledger_id = ${entry}`.execute(db)
  expect(await lot(entry, a)).toBeUndefined()
  const { rows } = await sql<{ n: string }>`select count(*) as n from points_lots
    where ledger_id = ${entry}`.execute(db)
  expect(Number(rows[0]!.n)).toBe(1)
}

/** The points tables' CHECK and foreign-key constraints: name → definition. */
async function constraints(db: Kysely<Database>): Promise<Record<string, string>> {
  const { rows } = await sql<{ name: string; def: string }>`select conname as name,
      pg_get_constraintdef(oid) as def from pg_constraint
    where contype in ('c', 'f')
      and conrelid in (to_regclass('points_ledger'), to_regclass('points_lots'))
    order by 1`.execute(db)
  return Object.fromEntries(rows.map((r) => [r.name, r.def]))
}

/** What both ways keep: the rules across two columns, the entry's member, the ledger's state. */
const KEPT = {
  points_ledger_delta_check: 'CHECK (((delta <> 0) OR (earned <> 0)))',
  points_ledger_earned_check: 'CHECK (((earned >= 0) OR (delta <= 0)))',
  points_ledger_member_id_fkey: 'FOREIGN KEY (member_id) REFERENCES members(id)',
  points_ledger_state_check: "CHECK ((state = ANY (ARRAY['available'::text, 'frozen'::text])))",
}

/** The rule across a lot's amounts, as PostgreSQL keeps it over integer columns. */
const AMOUNTS = 'CHECK (((remaining + expired) <= points))'

forEachDatabase('a cheaper points award (migration 0092)', (get) => {
  it('finds the level table multiplier and the level reached, as levelFor does', async () => {
    await expectLevels(get().db, 'o_levels')
  })

  it('keeps the level table in the order the award reads it: ascending, keys unique', () => {
    // quanzi_points_change_locked takes the last level reached in LEVELS_JSON's order
    const mins = LEVELS.map((l) => l.min)
    expect(mins).toEqual([...mins].sort((x, y) => x - y))
    expect(new Set(mins).size).toBe(mins.length)
    expect(new Set(LEVELS.map((l) => l.key)).size).toBe(LEVELS.length)
    expect(JSON.parse(LEVELS_JSON).map((l: { key: string }) => levelByKey(l.key))).toEqual([
      ...LEVELS,
    ])
  })

  it('refuses every value the points tables refused, and changes nothing', async () => {
    await expectRules(get().db, 'o_rules')
  })

  it("refuses a lot of a missing entry, and one whose member is not its entry's", async () => {
    await expectLotKeys(get().db, 'o_keys', true)
  })

  it('goes down to the constraints of migrations 0001–0091, and up again', async () => {
    const { db } = get()
    expect(await constraints(db)).toEqual({
      ...KEPT,
      // the type change re-read the rule with its columns' new types, cast to the base type
      points_lots_amounts_check:
        'CHECK ((((remaining)::integer + (expired)::integer) <= (points)::integer))',
      points_lots_entry_fkey:
        'FOREIGN KEY (ledger_id, member_id) REFERENCES points_ledger(id, member_id)',
    })
    await migrate(db, down)
    expect(await constraints(db)).toEqual({
      ...KEPT,
      points_ledger_balance_after_check: 'CHECK ((balance_after >= 0))',
      points_lots_amounts_check: AMOUNTS,
      points_lots_expired_check: 'CHECK ((expired >= 0))',
      points_lots_ledger_id_fkey: 'FOREIGN KEY (ledger_id) REFERENCES points_ledger(id)',
      points_lots_member_id_fkey: 'FOREIGN KEY (member_id) REFERENCES members(id)',
      points_lots_points_check: 'CHECK ((points > 0))',
      points_lots_remaining_check: 'CHECK ((remaining >= 0))',
    })
    // The same outcomes and rules with migration 0057's award and the table constraints
    await expectLevels(db, 'o_down_levels')
    await expectRules(db, 'o_down_rules')
    await expectLotKeys(db, 'o_down_keys', false)
    await migrate(db, up)
    await expectLevels(db, 'o_up_levels')
    await expectRules(db, 'o_up_rules')
    await expectLotKeys(db, 'o_up_keys', true)
  })
})
