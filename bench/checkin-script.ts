/** The pgbench script of a first check-in, shared by the check-in benches. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkinBatchStatement, checkinStatement } from '../src/community/checkins.js'
import { localDay } from '../src/community/community-time.js'
import { SET_BASED_CLAIMS } from '../src/community/members.js'
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

/**
 * The app's claim of `batch` signed pushes (members.ts `receiveAll`): `quanzi_receive_batch`
 * (migration 0094) over the arrays of {@link receive}'s arguments, keys `:id_g` as {@link batchOf}
 * makes them, answering `(n, outcome)`.
 */
const receiveBatch = (batch: number) => {
  const each = (expr: (key: string) => string) =>
    `array(select ${expr("(:id || '_' || g)")} from generate_series(1, ${batch}) g order by g)`
  const all = (value: string) => `array_fill(${value}, array[${batch}])`
  return `quanzi_receive_batch(${all("'wxbench'::text")}, ${each((k) => `'k' || ${k}`)}, ${each((k) => `'o' || ${k}`)}, ${all("'text'::text")}, ${all('null::text')}, ${all('now()')}, ${all('true')}, ${all('true')}, ${all('true')}, ${all('false')}, ${all('false')}, ${all('false')}, ${all('null::text')}, ${all('null::text')}, ${all('true')}, ${all('current_date')}, ${all('current_date')}, ${all("'wechat'::text")}, ${all('extract(epoch from now())::bigint')}, ${each((k) => `'n' || ${k}`)}, ${each(digest)}, 'Asia/Shanghai', '${LEVELS_JSON.replaceAll("'", "''")}')`
}

/** A body digest of 64 characters, as long as the push's SHA-256 in hex (the app computes it in Node). */
const digest = (key: string) => `lpad(${key}::text, 64, '0')`

/**
 * Where a script's pushes come from: one a transaction (`:id`), or `batch` of them (`g` of
 * `generate_series`, each key `:id_g`). The statements below are written once for both.
 */
interface Pushes {
  /** The SQL expression of a push's unique key. */
  key: string
  /** The rows' source (`from …`), empty for one push. */
  from: string
}
const ONE_PUSH: Pushes = { key: ':id', from: '' }
const batchOf = (batch: number): Pushes => ({
  key: "(:id || '_' || g)",
  from: ` from generate_series(1, ${batch}) g`,
})

/** The member ids of a batch, as the claim handed them on (`:mids`, comma-separated). */
const MIDS = "('{' || :mids || '}')"
/** Each member id of a batch as `mid`. */
const FROM_MIDS = ` from unnest(${MIDS}::bigint[]) mid`

const replayClaim = (p: Pushes) =>
  `insert into replay_claims (door, key, ts, nonce, body_digest, created_at) select 'wechat', 'wxbench', extract(epoch from now())::bigint, 'n' || ${p.key}, ${digest(p.key)}, now()${p.from};`
const pushClaim = (p: Pushes) =>
  `insert into inbound_events (appid, dedupe_key, openid, msg_type, status, received_at) select 'wxbench', 'k' || ${p.key}, 'o' || ${p.key}, 'text', 'processing', now()${p.from};`
const reply = (p: Pushes) =>
  `update inbound_events set status = 'replied', reply = repeat('x', 400), completed_at = now() where appid = 'wxbench' and dedupe_key ${p.from ? `= any(array(select 'k' || ${p.key}${p.from}))` : `= 'k' || ${p.key}`} and status = 'processing';`
/** A points award of 5 to the member `id` of each row of `from` (by default the one `:mid`). */
const ledger = (rule: string, balance: number, id = ':mid', from = '') =>
  `insert into points_ledger (appid, member_id, delta, rule, idempotency_key, balance_after, earned, day, created_at) select 'wxbench', ${id}, 5, '${rule}', '${rule}:' || ${id} || ':' || current_date, ${balance}, 5, current_date, now()${from}`
const checkinRow = (id = ':mid', from = '') =>
  `insert into checkins (member_id, day, appid, streak, points, created_at) select ${id}, current_date, 'wxbench', 1, 5, now()${from};`
const member = (p: Pushes, points: number) =>
  `insert into members (appid, openid, subscribed, first_seen_at, last_active_at, last_inbound_at, points_balance, points_lifetime) select 'wxbench', 'o' || ${p.key}, true, now(), now(), now(), ${points}, ${points}${p.from} returning id`

/** Writes `lines` as a pgbench script named `name` in a new temporary folder; returns its path. */
function writeScript(name: string, lines: string[]): string {
  const script = join(mkdtempSync(join(tmpdir(), 'quanzi-bench-')), name)
  writeFileSync(script, ['\\set id random(1, 4000000000000000000)', ...lines, ''].join('\n'))
  return script
}

/**
 * Writes a pgbench script of the three statements a first 签到 from a new member costs
 * (`quanzi_receive`, the check-in statement, the reply store) to a temporary file; returns its path.
 */
export function writeCheckinScript(): string {
  return writeScript('checkin.sql', [
    `select ${receive(ONE_PUSH.key)}->'member'->>'id' as mid \\gset`,
    `${statementSql(checkinStatement, ':mid')};`,
    reply(ONE_PUSH),
  ])
}

/**
 * The clients a batched script runs on beside `connections` clients of single pushes: as many
 * pushes in flight (clients × batch ≈ connections).
 */
export const batchedClients = (connections: number, batch: number) =>
  Math.max(1, Math.round(connections / batch))

/**
 * Writes a pgbench script of the same three statements as the app runs them under load: batched,
 * `batch` first 签到s from new members per statement — the claims (`quanzi_receive_batch`, or below
 * `SET_BASED_CLAIMS` pushes `quanzi_receive` per push, as the app sends them), the
 * check-ins (the app's own batched statement, `checkinBatchStatement`), the replies (one update
 * over their keys). Returns its path; each transaction of it is `batch` pushes.
 */
export function writeBatchedCheckinScript(batch: number): string {
  const pushes = batchOf(batch)
  const calls = (call: Parameters<typeof checkinStatement>[0]) =>
    checkinBatchStatement(Array.from({ length: batch }, () => call))
  return writeScript('checkin-batched.sql', [
    // as the app: set-based from SET_BASED_CLAIMS pushes, below quanzi_receive per push
    batch >= SET_BASED_CLAIMS
      ? `select string_agg(outcome->'member'->>'id', ',' order by n) as mids from ${receiveBatch(batch)} \\gset`
      : `select string_agg(r->'member'->>'id', ',' order by g) as mids from (select g, ${receive(pushes.key)} as r${pushes.from}) s \\gset`,
    `${statementSql(calls, MIDS)};`,
    reply(pushes),
  ])
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
  const claim = [replayClaim(ONE_PUSH), pushClaim(ONE_PUSH)]
  const shaped = (facts: boolean) => [
    'begin;',
    ...claim,
    `${member(ONE_PUSH, 5)} as mid \\gset`,
    ...(facts
      ? [
          "insert into member_days (appid, day, member_id, kinds) values ('wxbench', current_date, :mid, 1);",
        ]
      : []),
    `${ledger('daily_login', 5)};`,
    'commit;',
    'begin;',
    `${ledger('checkin', 10)};`,
    'update members set points_balance = points_balance + 5, points_lifetime = points_lifetime + 5 where id = :mid;',
    checkinRow(),
    'commit;',
    reply(ONE_PUSH),
  ]
  return {
    shaped: writeScript('floor-shaped.sql', shaped(false)),
    single: writeScript('floor-single.sql', [
      'begin;',
      ...claim,
      `${member(ONE_PUSH, 10)} as mid \\gset`,
      `${ledger('daily_login', 5)};`,
      `${ledger('checkin', 10)};`,
      checkinRow(),
      reply(ONE_PUSH),
      'commit;',
    ]),
    // The floor in the app's shape plus what the app also writes: the analytics fact (member_days)
    // in the claim's transaction (run in a schema with the lots trigger for the lots).
    facts: writeScript('floor-facts.sql', shaped(true)),
  }
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
  const pushes = batchOf(batch)
  const fact = facts
    ? ", f as (insert into member_days (appid, day, member_id, kinds) select 'wxbench', current_date, id, 1 from m)"
    : ''
  return writeScript(facts ? 'floor-facts-batched.sql' : 'floor-batched.sql', [
    'begin;',
    replayClaim(pushes),
    pushClaim(pushes),
    // the ids are read only when the batch wrote every member: an empty batch must not count
    `with m as (${member(pushes, 5)}), l as (${ledger('daily_login', 5, 'id', ' from m')})${fact} select string_agg(id::text, ',') as mids from m having count(*) = ${batch} \\gset`,
    'commit;',
    'begin;',
    `${ledger('checkin', 10, 'mid', FROM_MIDS)};`,
    `update members set points_balance = points_balance + 5, points_lifetime = points_lifetime + 5 where id = any(${MIDS}::bigint[]);`,
    checkinRow('mid', FROM_MIDS),
    'commit;',
    reply(pushes),
  ])
}
