import { type Kysely, sql } from 'kysely'

/**
 * A batch of check-ins in set-based statements (issue #20 target 4): `quanzi_checkin_batch`, what
 * `quanzi_checkin_day` (migrations/0042, around `quanzi_checkin` of 0074 and the award of 0092)
 * does for each of its rows, with the same results and rows — but two statements for the batch
 * instead of a dozen for each check-in. The app's batched check-in statement
 * (src/community/checkins.ts `checkinBatchStatement`) calls it; a check-in alone still runs
 * `quanzi_checkin_day`. Measured in bench/README.md ("session 47").
 *
 * 1. The batch's members are locked in the order given (the caller's: the claims' lock order), as
 *    the per-row calls locked them one after the other. A missing member fails the batch with
 *    `quanzi_checkin`'s error.
 * 2. One statement, taken after the locks (so, under READ COMMITTED, it sees whatever committed
 *    before them, as the per-row statements did): today's and yesterday's check-ins, the
 *    `checkin` rule (the account's, else the default) and its cap, the level multiplier; the
 *    check-in awards (a refused one answers `duplicate` when its key was used before, as
 *    `quanzi_points_change_locked` answers); the streak bonuses, each on the balance and level the
 *    check-in award left; the member rows updated once with the final figures; the check-in rows;
 *    and each row's answer, built as `quanzi_checkin` builds it (`award`, `extra`,
 *    `invite_pending`).
 *
 * Differences no caller sees: a member whose two awards both apply is updated once instead of
 * twice (the same final row); the ledger ids of a batch are given to its check-in awards first,
 * then to its bonuses (each member's award still before its bonus); the pending-invite flag is
 * read in the statement's snapshot rather than after the check-in's own writes (which do not
 * touch invites).
 *
 * Its plans are made with hash and merge joins and sequential scans off (the function's own
 * settings): a batch is at most 32 rows, each looked up by its keys. PL/pgSQL keeps a statement's
 * generic plan, made once; left to the statistics, one made while the tables were small (a new
 * install, a bench's new schema, PGlite, which never analyzes on its own) hashed whole `members`
 * and `checkins` at every batch once they had grown — measured: a batch of 16 took 87 ms on 100,000
 * members until the next analyze. The per-row functions' single-key lookups take their indexes
 * whatever the statistics. The settings also hold while the function's own calls and triggers
 * plan (the per-row fallback below, the lots trigger, the foreign-key checks) — only for plans
 * made during the call: a session's plans made before are used as they are, and plans made during
 * it are kept for later calls elsewhere; all of these are single-key lookups, index scans at any
 * size.
 *
 * A batch that names a member twice, or whose check-ins pay monthly rewards (累计签到: their
 * ledger reads and make-up interplay stay in `quanzi_checkin_monthly`), runs `quanzi_checkin_day`
 * for each row instead, in order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(BATCH).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function quanzi_checkin_batch`.execute(db)
}

/** The level `lifetime` reaches in `p_levels` (ascending `min`, as migration 0092 reads it). */
export const levelAt = (lifetime: string) =>
  `jsonb_path_query_array(p_levels, '$[*] ? (@.min <= $lifetime).key',
    jsonb_build_object('lifetime', ${lifetime})) ->> -1`

/**
 * An award's answer as `quanzi_points_change_locked` gives it: applied (with the figures after it
 * and the level before), or refused with the figures unchanged.
 */
export const answer = (status: string, delta: string, before: string, after: string) => `
      case when ${status} = 'applied' then jsonb_build_object('status', 'applied',
          'delta', ${delta}, 'balance', ${after}_balance, 'lifetime', ${after}_lifetime,
          'level', ${after}_level, 'previous_level', ${before}_level)
        else jsonb_build_object('status', ${status}, 'balance', ${before}_balance,
          'lifetime', ${before}_lifetime, 'level', ${before}_level) end`

/**
 * An award by rule `rule` for each row of `c` (`appid`, `member_id`, `day`, `week`, the award's
 * `key`) with the rule's row as `r` (none: disabled): `refused` — null when it may apply, else
 * `duplicate` when its key was used, else `capped` or `disabled`, as `quanzi_points_change_locked`
 * decides — and its `delta`, the rule's points times the multiplier of the member's level `level`.
 */
export const awardOf = (rule: string, level: string) => `case
        when coalesce(r.enabled, false) and (r.cap_count is null or r.cap_period is null
          or (select count(*) from points_ledger l
            where l.member_id = c.member_id and l.rule = '${rule}'
              and (r.cap_period <> 'day' or l.day = c.day)
              and (r.cap_period <> 'week' or l.day >= c.week)) < r.cap_count) then null
        when exists (select from points_ledger l
          where l.appid = c.appid and l.idempotency_key = c.key) then 'duplicate'
        when coalesce(r.enabled, false) then 'capped'
        else 'disabled' end as refused,
      r.points * coalesce((jsonb_path_query_first(p_levels,
        '$[*] ? (@.key == $level).multiplier', jsonb_build_object('level', ${level}))
        #>> '{}')::integer, 1) as delta`

/**
 * The `from` of an award's figures: `a` (an award's `refused`, `delta`, `member_id` and the
 * member's `m_balance`, `m_lifetime`, `m_level`) joined to `award` (the ledger insert's returned
 * `member_id`s) gives its `s.status` (applied, duplicate or the refusal) and, in `f`, the balance,
 * lifetime and level after it (unchanged when refused).
 */
export const AWARDED = `    from a left join award w on w.member_id = a.member_id,
      lateral (select coalesce(a.refused, case when w.member_id is null then 'duplicate'
        else 'applied' end) as status) s,
      lateral (select case when s.status = 'applied' then a.m_balance + a.delta
          else a.m_balance end as balance,
        case when s.status = 'applied' then a.m_lifetime + greatest(a.delta, 0)
          else a.m_lifetime end as lifetime) g,
      lateral (select g.balance, g.lifetime, case when s.status = 'applied'
          then coalesce(${levelAt('g.lifetime')}, a.m_level) else a.m_level end as level) f`

const BATCH = `
create function quanzi_checkin_batch(
  p_appid text[], p_member_id bigint[], p_now timestamptz[], p_day date[], p_week_start date[],
  p_bonuses jsonb[], p_monthly jsonb[], p_levels jsonb
) returns table (n bigint, outcome jsonb) language plpgsql
-- Row-by-row plans whatever the statistics (see the file's comment)
set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off as $fn$
declare
  v_locked bigint;
begin
  if cardinality(p_member_id) > (select count(distinct x) from unnest(p_member_id) x)
    or exists (select from unnest(p_monthly) x where coalesce(x, '{}'::jsonb) <> '{}'::jsonb) then
    return query select u.ord, quanzi_checkin_day(u.appid, u.member_id, u.now, u.day, u.week,
        u.bonuses, u.monthly, p_levels)
      from unnest(p_appid, p_member_id, p_now, p_day, p_week_start, p_bonuses, p_monthly)
        with ordinality u(appid, member_id, now, day, week, bonuses, monthly, ord)
      order by u.ord;
    return;
  end if;
  perform from unnest(p_member_id) with ordinality u(id, ord) join members m on m.id = u.id
    order by u.ord for no key update of m;
  get diagnostics v_locked = row_count;
  if v_locked < cardinality(p_member_id) then
    raise exception 'quanzi: member % does not exist', (select u.id
      from unnest(p_member_id) with ordinality u(id, ord)
      where not exists (select from members m where m.id = u.id) order by u.ord limit 1);
  end if;
  return query
  with c as (
    select u.ord, u.appid, u.member_id, u.now, u.day, u.week, u.bonuses,
      m.points_balance as m_balance, m.points_lifetime as m_lifetime, m.level as m_level,
      t.streak as today, coalesce(y.streak, 0) + 1 as streak,
      'checkin:' || u.member_id || ':' || u.day as key
    from unnest(p_appid, p_member_id, p_now, p_day, p_week_start, p_bonuses)
        with ordinality u(appid, member_id, now, day, week, bonuses, ord)
      join members m on m.id = u.member_id
      left join checkins t on t.member_id = u.member_id and t.day = u.day
      left join checkins y on y.member_id = u.member_id and y.day = u.day - 1
  ),
  -- the check-in award: refused (disabled, capped; duplicate when its key was used), or its delta
  a as (
    select c.*, ${awardOf('checkin', 'c.m_level')}
    from c left join lateral (select * from point_rules
        where rule = 'checkin' and appid in (c.appid, '*') order by appid = '*' limit 1) r on true
    where c.today is null
  ),
  award as (
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, expires_at)
      select appid, member_id, delta, 'checkin', null, key, m_balance + delta,
        greatest(delta, 0), day, now, null
      from a where refused is null order by ord
      on conflict (appid, idempotency_key) do nothing
      returning member_id
  ),
  -- the figures after the check-in award (unchanged when refused), the streak bonus it leads to
  a1 as (
    select a.*, s.status as award_status,
      case when s.status = 'applied' then a.delta else 0 end as award_points,
      f.balance as a_balance, f.lifetime as a_lifetime, f.level as a_level,
      coalesce((a.bonuses->>a.streak::text)::integer, 0) as bonus
${AWARDED}
  ),
  extra as (
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, expires_at)
      select appid, member_id, bonus, 'streak_bonus', 'streak ' || streak,
        'streak:' || member_id || ':' || day, a_balance + bonus, bonus, day, now, null
      from a1 where bonus > 0 order by ord
      on conflict (appid, idempotency_key) do nothing
      returning member_id
  ),
  -- the figures after the bonus, the answers of both awards
  a2 as (
    select a1.*, e.status as extra_status,
      -- as quanzi_checkin: a bonus of 0 or less is answered (and counted) as configured
      case when a1.bonus <= 0 or e.status = 'applied' then a1.bonus else 0 end as bonus_points,
      case when e.status = 'applied' then a1.a_balance + a1.bonus else a1.a_balance end
        as b_balance,
      case when e.status = 'applied' then a1.a_lifetime + a1.bonus else a1.a_lifetime end
        as b_lifetime,
      case when e.status = 'applied'
        then coalesce(${levelAt('a1.a_lifetime + a1.bonus')}, a1.a_level)
        else a1.a_level end as b_level
    from a1 left join extra x on x.member_id = a1.member_id,
      lateral (select case when a1.bonus <= 0 then null when x.member_id is null then 'duplicate'
        else 'applied' end as status) e
  ),
  written as (
    update members m set points_balance = a2.b_balance, points_lifetime = a2.b_lifetime,
        level = a2.b_level
      from a2
      where m.id = a2.member_id and 'applied' in (a2.award_status, a2.extra_status)
  ),
  days as (
    insert into checkins (member_id, day, appid, streak, points, created_at)
      select member_id, day, appid, streak, award_points + bonus_points, now from a2
  )
  select c.ord, jsonb_build_object('status', 'already', 'streak', c.today,
      'balance', c.m_balance, 'level', c.m_level)
    from c where c.today is not null
  union all
  select a2.ord, jsonb_build_object('status', 'checked_in', 'streak', a2.streak,
      'points', a2.award_points, 'bonus', a2.bonus_points, 'balance', a2.b_balance,
      'lifetime', a2.b_lifetime, 'level', a2.b_level,
      'award', ${answer('a2.award_status', 'a2.delta', 'a2.m', 'a2.a')},
      'extra', case when a2.extra_status is not null then ${answer('a2.extra_status', 'a2.bonus', 'a2.a', 'a2.b')} end,
      'invite_pending', exists (select 1 from invites
        where invitee_member_id = a2.member_id and status = 'pending'))
    from a2
  order by 1;
end
$fn$`
