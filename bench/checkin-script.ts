/** The pgbench script of a first check-in, shared by the check-in benches. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely'
import { checkinStatement } from '../src/community/checkins.js'
import { localDay } from '../src/community/community-time.js'
import { LEVELS_JSON } from '../src/community/points-ledger.js'

/** Stands for the member id in the compiled check-in statement; replaced by pgbench's `:mid`. */
const MEMBER = 987_654_321_987

/**
 * The app's check-in statement (`checkinStatement`, default settings, today in Asia/Shanghai) as
 * SQL text with its parameters written in, the member id as pgbench's `:mid`.
 */
function checkinSql(): string {
  const compiler = new Kysely<unknown>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  })
  const now = new Date()
  const day = localDay(now, 'Asia/Shanghai')
  const { sql: text, parameters } = checkinStatement({
    appid: 'wxbench',
    memberId: MEMBER,
    now,
    day,
    settings: { streakBonuses: {} },
  }).compile(compiler)
  const literal = (v: unknown) =>
    v === MEMBER
      ? ':mid'
      : typeof v === 'number' || typeof v === 'boolean'
        ? String(v)
        : `'${(v instanceof Date ? v.toISOString() : String(v)).replaceAll("'", "''")}'`
  return text.replace(/\$(\d+)/g, (_, n: string) => literal(parameters[Number(n) - 1]))
}

/**
 * Writes a pgbench script of the three statements a first 签到 from a new member costs
 * (`quanzi_receive`, the check-in statement, the reply store) to a temporary file; returns its path.
 */
export function writeCheckinScript(): string {
  const script = join(mkdtempSync(join(tmpdir(), 'quanzi-bench-')), 'checkin.sql')
  const levels = LEVELS_JSON.replaceAll("'", "''")
  writeFileSync(
    script,
    [
      '\\set id random(1, 2000000000)',
      `select quanzi_receive('wxbench', 'k' || :id, 'o' || :id, 'text', null, now(), true, true, true, false, false, false, null, null, true, 'Asia/Shanghai', current_date, current_date, '${levels}')->'member'->>'id' as mid \\gset`,
      `${checkinSql().replace(/\s+/g, ' ')};`,
      "update inbound_events set status = 'replied', reply = repeat('x', 400), completed_at = now() where appid = 'wxbench' and dedupe_key = 'k' || :id and status = 'processing';",
      '',
    ].join('\n'),
  )
  return script
}
