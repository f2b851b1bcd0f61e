import { type Kysely, sql } from 'kysely'
import { type ColumnDomain, toDomains, toTableChecks } from './column-domains.js'

/**
 * A cheaper points award (issue #20 target 4): every award — a first push's daily login, every
 * check-in, each streak bonus — writes a ledger entry and, through the lots trigger, a lot; this
 * makes both cheaper. The same results and rows. Measured in bench/README.md ("session 47"): a
 * check-in (`quanzi_checkin_day`) 6.5 % fewer instructions, a first push's claim with its daily
 * login award (`quanzi_receive`) as many; the three check-in statements' backends 9.6 % less CPU
 * a push (`bench:checkin-floor`, medians of 5 rounds).
 *
 * - `quanzi_points_change_locked` finds the member's level multiplier and the level its new
 *   lifetime reaches with a JSON path on `p_levels` — an expression PL/pgSQL evaluates in place —
 *   instead of a query over `jsonb_array_elements` (two statements, each planned, started and
 *   ended, on every award). The level reached is the last whose `min` the lifetime reaches, in the
 *   order `p_levels` lists them: the table in ascending `min`, as `LEVELS` (src/community/levels.ts)
 *   is kept and `levelFor` reads it — before, the greatest `min` reached, the same level for such a
 *   table. The multiplier is the first level with the member's key (keys are unique there).
 *   The path compares JSON values as they are: a `min` written as a string, or a `p_levels` that
 *   is not an array, no longer reads as the table meant; only `LEVELS_JSON` is passed.
 * - The single-column CHECKs of `points_ledger` (`balance_after >= 0`) and `points_lots`
 *   (`points > 0`, `remaining >= 0`, `expired >= 0`) become domains (`points_count`, `lot_points`),
 *   as migration 0091 did for the push's tables: a table's CHECKs are read back from their stored
 *   text and prepared at every statement that writes a row, and each award writes both tables in
 *   statements of their own. The rules that span two columns stay table CHECKs
 *   (`points_ledger_delta_check`, `points_ledger_earned_check`, `points_lots_amounts_check`), and so
 *   does `points_ledger_state_check`: the lots trigger reads `new.state`, and a PL/pgSQL plan
 *   prepared before a column's type changed refuses that value's new type in a session that
 *   prepared it.
 * - A lot refers to its ledger entry and that entry's member together —
 *   `foreign key (ledger_id, member_id) references points_ledger (id, member_id)`, on a new unique
 *   index of the ledger — instead of one foreign key to the entry and another to the member: one
 *   check a lot instead of two (each a row lock of the referenced row), and a lot whose member is
 *   not its entry's member, which nothing but the lots trigger's copy prevented, is refused. The
 *   entry's own foreign key still ties the member to `members`.
 *
 * Deploying: `members`, `points_ledger` and `points_lots` are locked exclusively until the
 * migrations commit, in the order an award takes them; a job that takes them in another order
 * (the expiry notice updates `points_lots`, then reads `members`) can deadlock with the migration,
 * and PostgreSQL then aborts one of the two — the migration, at worst: run it again (or deploy
 * outside the daily jobs' hour). Every push from a member waits. Inside it the ledger's new index is built and the
 * lots checked against it (a scan of each), and the four columns' domain rules are checked (a
 * scan of each table): 2.6–2.7 s on 1,159,944 entries and as many lots (PostgreSQL 15).
 */
const DOMAINS: readonly ColumnDomain[] = [
  {
    domain: 'points_count',
    base: 'integer',
    check: 'value >= 0',
    columns: [
      { table: 'points_ledger', column: 'balance_after', check: 'balance_after >= 0' },
      { table: 'points_lots', column: 'remaining', check: 'remaining >= 0' },
      { table: 'points_lots', column: 'expired', check: 'expired >= 0' },
    ],
  },
  {
    domain: 'lot_points',
    base: 'integer',
    check: 'value > 0',
    columns: [{ table: 'points_lots', column: 'points', check: 'points > 0' }],
  },
]

/** The tables this changes, in the order an award takes them (the foreign keys name `members`). */
const LOCK_ORDER = ['members', 'points_ledger', 'points_lots']

export async function up(db: Kysely<unknown>): Promise<void> {
  await toDomains(db, DOMAINS, LOCK_ORDER)
  await sql`create unique index points_ledger_entry_member_key on points_ledger (id, member_id)`.execute(
    db,
  )
  await sql`alter table points_lots drop constraint points_lots_ledger_id_fkey,
    drop constraint points_lots_member_id_fkey,
    add constraint points_lots_entry_fkey foreign key (ledger_id, member_id)
      references points_ledger (id, member_id)`.execute(db)
  await sql.raw(locked('path')).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(locked('query')).execute(db)
  await toTableChecks(db, DOMAINS, LOCK_ORDER)
  await sql`alter table points_lots drop constraint points_lots_entry_fkey,
    add constraint points_lots_ledger_id_fkey foreign key (ledger_id) references points_ledger (id),
    add constraint points_lots_member_id_fkey foreign key (member_id) references members (id)`.execute(
    db,
  )
  await sql`drop index points_ledger_entry_member_key`.execute(db)
}

/** The refusals' common answer: the member's figures unchanged. */
const UNCHANGED = `'balance', m.points_balance, 'lifetime', m.points_lifetime, 'level', m.level`

/**
 * How the award finds the member's multiplier (into `v_delta`) and the level reached (into
 * `v_level`): `query`, migration 0057's statements; `path`, this migration's expressions.
 */
const LEVELS = {
  query: {
    delta: `select r.points * coalesce(max((l->>'multiplier')::integer), 1) into v_delta
      from jsonb_array_elements(p_levels) l where l->>'key' = m.level;`,
    level: `select l->>'key' into v_level from jsonb_array_elements(p_levels) l
    where (l->>'min')::integer <= m.points_lifetime + v_earned
    order by (l->>'min')::integer desc limit 1;`,
  },
  path: {
    delta: `v_delta := r.points * coalesce((jsonb_path_query_first(p_levels,
      '$[*] ? (@.key == $level).multiplier', jsonb_build_object('level', m.level)) #>> '{}')::integer,
      1);`,
    level: `v_level := jsonb_path_query_array(p_levels, '$[*] ? (@.min <= $lifetime).key',
    jsonb_build_object('lifetime', m.points_lifetime + v_earned)) ->> -1;`,
  },
}

/** `quanzi_points_change_locked` of migration 0057, its level lookups as `levels` says. */
const locked = (levels: keyof typeof LEVELS) => `
create or replace function quanzi_points_change_locked(
  m members, p_appid text, p_rule text, p_key text, p_reference text, p_now timestamptz,
  p_day date, p_week_start date, p_delta integer, p_earned boolean, p_expires_at timestamptz,
  p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  r point_rules%rowtype;
  v_delta integer;
  v_earned integer;
  v_level text;
  v_count integer;
  v_refused text;
begin
  if p_delta is null then
    select * into r from point_rules where rule = p_rule and appid in (p_appid, '*')
      order by appid = '*' limit 1;
    if not found or not r.enabled then
      v_refused := 'disabled';
    elsif r.cap_count is not null and r.cap_period is not null then
      select count(*) into v_count from points_ledger
        where member_id = m.id and rule = p_rule
          and (r.cap_period <> 'day' or day = p_day)
          and (r.cap_period <> 'week' or day >= p_week_start);
      if v_count >= r.cap_count then
        v_refused := 'capped';
      end if;
    end if;
  else
    v_delta := p_delta;
    if v_delta <> 0 and m.points_balance + v_delta < 0 then
      v_refused := 'insufficient';
    end if;
  end if;
  -- A key used before answers duplicate first, whatever else would refuse the change.
  if v_refused is not null or p_delta = 0 then
    if exists (select 1 from points_ledger where appid = p_appid and idempotency_key = p_key) then
      return jsonb_build_object('status', 'duplicate', ${UNCHANGED});
    end if;
    if p_delta = 0 then
      raise exception 'quanzi: delta must be non-zero';
    end if;
    return jsonb_build_object('status', v_refused, ${UNCHANGED});
  end if;
  if p_delta is null then
    ${LEVELS[levels].delta}
  end if;
  v_earned := case when p_earned then greatest(v_delta, 0) else 0 end;
  ${LEVELS[levels].level}
  -- The key's unique constraint decides, also when another member's change used it meanwhile.
  insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
      balance_after, earned, day, created_at, expires_at)
    values (p_appid, m.id, v_delta, p_rule, p_reference, p_key, m.points_balance + v_delta,
      v_earned, p_day, p_now, p_expires_at)
    on conflict (appid, idempotency_key) do nothing;
  if not found then
    return jsonb_build_object('status', 'duplicate', ${UNCHANGED});
  end if;
  update members set points_balance = m.points_balance + v_delta,
      points_lifetime = m.points_lifetime + v_earned, level = coalesce(v_level, m.level)
    where id = m.id;
  return jsonb_build_object('status', 'applied', 'delta', v_delta,
    'balance', m.points_balance + v_delta, 'lifetime', m.points_lifetime + v_earned,
    'level', coalesce(v_level, m.level), 'previous_level', m.level);
end
$fn$`
