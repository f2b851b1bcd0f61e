/** The pgbench script of a first check-in, shared by the check-in benches. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkinBatchStatement, checkinStatement } from '../src/community/checkins.js'
import { localDay } from '../src/community/community-time.js'
import { LEVELS_JSON } from '../src/community/points-ledger.js'
import { noRowsDatabase } from './no-rows.js'

/** Stands for the member id in the compiled check-in statement; replaced by pgbench's `:mid`. */
const MEMBER = 987_654_321_987

/** A compiler only: the app's statements as SQL text, run by pgbench. */
const compiler = noRowsDatabase()

/** A parameter as an SQL literal (arrays as `array[…]`); the member id, or ids, as `member`. */
function literal(v: unknown, member: string): string {
  if (v === MEMBER) return member
  if (Array.isArray(v))
    return v.every((x) => x === MEMBER) ? member : `array[${v.map((x) => literal(x, member))}]`
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return `'${(v instanceof Date ? v.toISOString() : String(v)).replaceAll("'", "''")}'`
}

/**
 * An app statement (default settings, today in Asia/Shanghai) as one line of SQL text with its
 * parameters written in, the member id (or the array of them) as `member`.
 */
function statementSql(
  build: (call: Parameters<typeof checkinStatement>[0]) => {
    compile(c: typeof compiler): { sql: string; parameters: readonly unknown[] }
  },
  member: string,
): string {
  const now = new Date()
  const day = localDay(now, 'Asia/Shanghai')
  const { sql: text, parameters } = build({
    appid: 'wxbench',
    memberId: MEMBER,
    now,
    day,
    settings: { streakBonuses: {} },
  }).compile(compiler)
  return text
    .replace(/\$(\d+)/g, (_, n: string) => literal(parameters[Number(n) - 1], member))
    .replace(/\s+/g, ' ')
}

/**
 * The app's claim of a signed push (members.ts `receiveCall` with a replay stamp): the overload of
 * migration 0019 — the replay claim (its row in `replay_claims`), the push's claim and member,
 * the moderator flag read back. `key` makes the dedupe key, the openid and the nonce unique; the
 * body digest is 64 characters long, as the app's SHA-256 in hex.
 */
const receive = (key: string) =>
  `quanzi_receive('wxbench', 'k' || ${key}, 'o' || ${key}, 'text', null, now(), true, true, true, false, false, false, null, null, true, 'Asia/Shanghai', current_date, current_date, '${LEVELS_JSON.replaceAll("'", "''")}', 'wechat', extract(epoch from now())::bigint, 'n' || ${key}, ${digest(key)})`

/** A body digest of 64 characters, as long as the push's SHA-256 in hex (the app computes it in Node). */
const digest = (key: string) => `lpad(${key}::text, 64, '0')`

/**
 * Writes a pgbench script of the three statements a first 签到 from a new member costs
 * (`quanzi_receive`, the check-in statement, the reply store) to a temporary file; returns its path.
 */
export function writeCheckinScript(): string {
  const script = join(mkdtempSync(join(tmpdir(), 'quanzi-bench-')), 'checkin.sql')
  writeFileSync(
    script,
    [
      '\\set id random(1, 4000000000000000000)',
      `select ${receive(':id')}->'member'->>'id' as mid \\gset`,
      `${statementSql(checkinStatement, ':mid')};`,
      "update inbound_events set status = 'replied', reply = repeat('x', 400), completed_at = now() where appid = 'wxbench' and dedupe_key = 'k' || :id and status = 'processing';",
      '',
    ].join('\n'),
  )
  return script
}

/**
 * Writes a pgbench script of the same three statements as the app runs them under load: batched,
 * `batch` first 签到s from new members per statement — the claims (`quanzi_receive` per push), the
 * check-ins (the app's own batched statement, `checkinBatchStatement`), the replies (one update
 * over their keys). Returns its path; each transaction of it is `batch` pushes.
 */
export function writeBatchedCheckinScript(batch: number): string {
  const script = join(mkdtempSync(join(tmpdir(), 'quanzi-bench-')), 'checkin-batched.sql')
  const calls = (call: Parameters<typeof checkinStatement>[0]) =>
    checkinBatchStatement(Array.from({ length: batch }, () => call))
  writeFileSync(
    script,
    [
      '\\set id random(1, 4000000000000000000)',
      `select string_agg(r->'member'->>'id', ',' order by g) as mids from (select g, ${receive("(:id || '_' || g)")} as r from generate_series(1, ${batch}) g) s \\gset`,
      `${statementSql(calls, "('{' || :mids || '}')")};`,
      `update inbound_events set status = 'replied', reply = repeat('x', 400), completed_at = now() where appid = 'wxbench' and dedupe_key = any(array(select 'k' || :id || '_' || g from generate_series(1, ${batch}) g)) and status = 'processing';`,
      '',
    ].join('\n'),
  )
  return script
}

/**
 * pgbench scripts of the least a first 签到 from a new member must write (issue #20 target 4: the
 * floor the check-in statements are measured against), in plain SQL on the product's tables and
 * indexes, with no functions, no points lots (the caller drops the lots trigger) and no analytics
 * fact: the claims (the signed request's replay claim and the push's), the member, one ledger
 * entry per award (daily_login, check-in) and the cached balance, the check-in row, the reply.
 *
 * - `shaped`: in the app's three transactions — the claim with the member and the daily_login
 *   award (committed before the handler runs, so a retry finds it), the check-in, the reply.
 * - `single`: everything in one transaction, the member written once with both awards.
 * - `facts`: `shaped` plus the analytics fact (`member_days`) the claim also writes; run where the
 *   lots trigger is in place, it is the floor plus what the product adds in rows.
 */
export function writeFloorScripts(): { shaped: string; single: string; facts: string } {
  const dir = mkdtempSync(join(tmpdir(), 'quanzi-bench-'))
  const ledger = (rule: string, balance: number) =>
    `insert into points_ledger (appid, member_id, delta, rule, idempotency_key, balance_after, earned, day, created_at) values ('wxbench', :mid, 5, '${rule}', '${rule}:' || :mid || ':' || current_date, ${balance}, 5, current_date, now());`
  const claim = [
    `insert into replay_claims (door, key, ts, nonce, body_digest, created_at) values ('wechat', 'wxbench', extract(epoch from now())::bigint, 'n' || :id, ${digest(':id')}, now());`,
    "insert into inbound_events (appid, dedupe_key, openid, msg_type, status, received_at) values ('wxbench', 'k' || :id, 'o' || :id, 'text', 'processing', now());",
  ].join('\n')
  const member = (points: number) =>
    `insert into members (appid, openid, subscribed, first_seen_at, last_active_at, last_inbound_at, points_balance, points_lifetime) values ('wxbench', 'o' || :id, true, now(), now(), now(), ${points}, ${points}) returning id as mid \\gset`
  const checkin =
    "insert into checkins (member_id, day, appid, streak, points, created_at) values (:mid, current_date, 'wxbench', 1, 5, now());"
  const reply =
    "update inbound_events set status = 'replied', reply = repeat('x', 400), completed_at = now() where appid = 'wxbench' and dedupe_key = 'k' || :id and status = 'processing';"
  const shaped = join(dir, 'floor-shaped.sql')
  writeFileSync(
    shaped,
    [
      '\\set id random(1, 4000000000000000000)',
      'begin;',
      claim,
      member(5),
      ledger('daily_login', 5),
      'commit;',
      'begin;',
      ledger('checkin', 10),
      'update members set points_balance = points_balance + 5, points_lifetime = points_lifetime + 5 where id = :mid;',
      checkin,
      'commit;',
      reply,
      '',
    ].join('\n'),
  )
  const single = join(dir, 'floor-single.sql')
  writeFileSync(
    single,
    [
      '\\set id random(1, 4000000000000000000)',
      'begin;',
      claim,
      member(10),
      ledger('daily_login', 5),
      ledger('checkin', 10),
      checkin,
      reply,
      'commit;',
      '',
    ].join('\n'),
  )
  // The floor in the app's shape plus what the app also writes: the analytics fact (member_days)
  // in the claim's transaction (run in a schema with the lots trigger for the lots).
  const facts = join(dir, 'floor-facts.sql')
  writeFileSync(
    facts,
    readFileSync(shaped, 'utf8').replace(
      ledger('daily_login', 5),
      `insert into member_days (appid, day, member_id, kinds) values ('wxbench', current_date, :mid, 1);\n${ledger('daily_login', 5)}`,
    ),
  )
  return { shaped, single, facts }
}

/**
 * The floor of {@link writeFloorScripts}' `shaped` — the same rows in the app's three
 * transactions — written `batch` pushes at a time, one set-based statement per table, as the app
 * batches its statements: the floor the batched check-in statements
 * ({@link writeBatchedCheckinScript}) are measured against. Each transaction of it is `batch`
 * pushes. `facts`: with the analytics fact (`member_days`) the claim also writes, as `facts` of
 * {@link writeFloorScripts} (run where the lots trigger is in place: the product's rows). Returns
 * its path.
 */
export function writeBatchedFloorScript(batch: number, { facts = false } = {}): string {
  const script = join(
    mkdtempSync(join(tmpdir(), 'quanzi-bench-')),
    facts ? 'floor-facts-batched.sql' : 'floor-batched.sql',
  )
  const fact = facts
    ? ", f as (insert into member_days (appid, day, member_id, kinds) select 'wxbench', current_date, id, 1 from m)"
    : ''
  const key = "(:id || '_' || g)"
  const pushes = `generate_series(1, ${batch}) g`
  const mids = "unnest(('{' || :mids || '}')::bigint[]) mid"
  const ledger = (rule: string, balance: number, from: string, id: string) =>
    `insert into points_ledger (appid, member_id, delta, rule, idempotency_key, balance_after, earned, day, created_at) select 'wxbench', ${id}, 5, '${rule}', '${rule}:' || ${id} || ':' || current_date, ${balance}, 5, current_date, now() from ${from}`
  writeFileSync(
    script,
    [
      '\\set id random(1, 4000000000000000000)',
      'begin;',
      `insert into replay_claims (door, key, ts, nonce, body_digest, created_at) select 'wechat', 'wxbench', extract(epoch from now())::bigint, 'n' || ${key}, ${digest(key)}, now() from ${pushes};`,
      `insert into inbound_events (appid, dedupe_key, openid, msg_type, status, received_at) select 'wxbench', 'k' || ${key}, 'o' || ${key}, 'text', 'processing', now() from ${pushes};`,
      `with m as (insert into members (appid, openid, subscribed, first_seen_at, last_active_at, last_inbound_at, points_balance, points_lifetime) select 'wxbench', 'o' || ${key}, true, now(), now(), now(), 5, 5 from ${pushes} returning id), l as (${ledger('daily_login', 5, 'm', 'id')})${fact} select string_agg(id::text, ',') as mids from m having count(*) = ${batch} \\gset`,
      'commit;',
      'begin;',
      `${ledger('checkin', 10, mids, 'mid')};`,
      "update members set points_balance = points_balance + 5, points_lifetime = points_lifetime + 5 where id = any(('{' || :mids || '}')::bigint[]);",
      `insert into checkins (member_id, day, appid, streak, points, created_at) select mid, current_date, 'wxbench', 1, 5, now() from ${mids};`,
      'commit;',
      `update inbound_events set status = 'replied', reply = repeat('x', 400), completed_at = now() where appid = 'wxbench' and dedupe_key = any(array(select 'k' || ${key} from ${pushes})) and status = 'processing';`,
      '',
    ].join('\n'),
  )
  return script
}
