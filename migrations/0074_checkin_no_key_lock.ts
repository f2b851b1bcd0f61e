import { type Kysely, sql } from 'kysely'

/**
 * A check-in no longer waits for the nightly analytics build. The build (rollup.ts `buildDay`)
 * inserts `member_days` rows that reference `members(id)`; PostgreSQL's foreign-key check takes
 * `FOR KEY SHARE` on each member it writes a new row for and holds it until the build commits
 * (seconds at a million members, just after midnight, when streak-keepers check in). The
 * functions below locked the member `FOR UPDATE`, which conflicts with `FOR KEY SHARE`, so each
 * such member's check-in, award or make-up (补签) queued behind the whole build — past WeChat's
 * 5 s retries.
 *
 * They lock it `FOR NO KEY UPDATE` now: it still excludes every other writer of the member (it
 * conflicts with itself and with `FOR UPDATE`), so awards for one member still serialize, but
 * not the foreign-key checks of rows that merely reference the member. None of them deletes the
 * member or changes its id. Redefined with the same signatures and bodies otherwise:
 *
 *   quanzi_points_change    (migrations/0057) every ledger change that locks the member itself
 *   quanzi_checkin          (migrations/0057) the check-in (`quanzi_checkin_day` calls it)
 *   quanzi_checkin_makeup   (migrations/0042) the make-up
 *
 * A 绑定 still locks both members `FOR UPDATE` (mp-link.ts): it moves rows keyed on them and must
 * exclude the inserts that reference them (points-ledger.ts `keyShareMember`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(pointsChange('for no key update')).execute(db)
  await sql.raw(checkin('for no key update')).execute(db)
  await sql.raw(makeup('for no key update')).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(makeup('for update')).execute(db)
  await sql.raw(checkin('for update')).execute(db)
  await sql.raw(pointsChange('for update')).execute(db)
}

/** The member's row lock each function takes: `up`'s, or the one it replaces (`down`). */
type Lock = 'for no key update' | 'for update'

/** After an award's answer (any status carries them): the member's figures it leaves. */
const TRACK = (v: string) => `m.points_balance := (${v}->>'balance')::integer;
  m.points_lifetime := (${v}->>'lifetime')::integer;
  m.level := ${v}->>'level';`

/** quanzi_points_change of migrations/0057, locking the member with `lock`. */
const pointsChange = (lock: Lock) => `
create or replace function quanzi_points_change(
  p_appid text, p_member_id bigint, p_rule text, p_key text, p_reference text,
  p_now timestamptz, p_day date, p_week_start date, p_delta integer, p_earned boolean,
  p_expires_at timestamptz, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
begin
  select * into m from members where id = p_member_id ${lock};
  if not found then
    raise exception 'quanzi: member % does not exist', p_member_id;
  end if;
  return quanzi_points_change_locked(m, p_appid, p_rule, p_key, p_reference, p_now, p_day,
    p_week_start, p_delta, p_earned, p_expires_at, p_levels);
end
$fn$`

/** quanzi_checkin of migrations/0057, locking the member with `lock`. */
const checkin = (lock: Lock) => `
create or replace function quanzi_checkin(
  p_appid text, p_member_id bigint, p_now timestamptz, p_day date, p_week_start date,
  p_bonuses jsonb, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
  v_streak integer;
  v_bonus integer;
  v_award jsonb;
  v_extra jsonb := null;
  v_points integer := 0;
begin
  select * into m from members where id = p_member_id ${lock};
  if not found then
    raise exception 'quanzi: member % does not exist', p_member_id;
  end if;
  select streak into v_streak from checkins where member_id = m.id and day = p_day;
  if found then
    return jsonb_build_object('status', 'already', 'streak', v_streak,
      'balance', m.points_balance, 'level', m.level);
  end if;
  select coalesce(max(streak), 0) + 1 into v_streak from checkins
    where member_id = m.id and day = p_day - 1;
  v_award := quanzi_points_change_locked(m, p_appid, 'checkin',
    'checkin:' || m.id || ':' || p_day, null, p_now, p_day, p_week_start, null, true, null,
    p_levels);
  ${TRACK('v_award')}
  if v_award->>'status' = 'applied' then
    v_points := (v_award->>'delta')::integer;
  end if;
  v_bonus := coalesce((p_bonuses->>v_streak::text)::integer, 0);
  if v_bonus > 0 then
    v_extra := quanzi_points_change_locked(m, p_appid, 'streak_bonus',
      'streak:' || m.id || ':' || p_day, 'streak ' || v_streak, p_now, p_day, p_week_start,
      v_bonus, true, null, p_levels);
    ${TRACK('v_extra')}
    if v_extra->>'status' <> 'applied' then
      v_bonus := 0;
    end if;
  end if;
  insert into checkins (member_id, day, appid, streak, points, created_at)
    values (m.id, p_day, p_appid, v_streak, v_points + v_bonus, p_now);
  return jsonb_build_object('status', 'checked_in', 'streak', v_streak, 'points', v_points,
    'bonus', v_bonus, 'balance', m.points_balance, 'lifetime', m.points_lifetime,
    'level', m.level, 'award', v_award, 'extra', v_extra,
    'invite_pending', exists (select 1 from invites
      where invitee_member_id = m.id and status = 'pending'));
end
$fn$`

/** quanzi_checkin_makeup of migrations/0042, locking the member with `lock`. */
const makeup = (lock: Lock) => `
create or replace function quanzi_checkin_makeup(
  p_appid text, p_member_id bigint, p_now timestamptz, p_today date, p_day date,
  p_earliest date, p_time_zone text, p_week_start date, p_per_month integer, p_costs jsonb,
  p_bonuses jsonb, p_monthly jsonb, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
  v_previous_level text;
  v_follow date;
  v_day date := p_day;
  v_month date;
  v_used integer;
  v_cost integer;
  v_spend jsonb;
  v_streak integer;
  v_start date;
  v_end date;
  v_n integer;
  v_amount integer;
  v_bonus integer := 0;
  v_paid jsonb := '[]'::jsonb;
  v_extra jsonb;
  v_monthly jsonb := null;
  v_current integer;
begin
  select * into m from members where id = p_member_id ${lock};
  if not found then
    raise exception 'quanzi: member % does not exist', p_member_id;
  end if;
  v_previous_level := m.level;
  -- the community day the member (last) followed, or was first seen
  v_follow := (coalesce(m.subscribed_at, m.first_seen_at) at time zone p_time_zone)::date;
  if v_day is null then
    select d::date into v_day
      from generate_series((p_today - 1)::timestamp, greatest(p_earliest, v_follow)::timestamp,
        interval '-1 day') d
      where not exists (select 1 from checkins c where c.member_id = m.id and c.day = d::date)
      order by d desc limit 1;
    if v_day is null then
      return jsonb_build_object('status', 'none', 'balance', m.points_balance, 'level', m.level);
    end if;
  else
    if v_day < p_earliest or v_day >= p_today then
      raise exception 'quanzi: make-up day % outside [%, %)', v_day, p_earliest, p_today;
    end if;
    if v_day < v_follow then
      return jsonb_build_object('status', 'before_follow', 'day', v_day, 'follow', v_follow,
        'balance', m.points_balance, 'level', m.level);
    end if;
    if exists (select 1 from checkins where member_id = m.id and day = v_day) then
      return jsonb_build_object('status', 'already', 'day', v_day,
        'balance', m.points_balance, 'level', m.level);
    end if;
  end if;

  v_month := date_trunc('month', v_day)::date;
  select count(*) into v_used from checkins
    where member_id = m.id and made_up_at is not null and day >= v_month
      and day < (v_month + interval '1 month')::date;
  if v_used >= p_per_month then
    return jsonb_build_object('status', 'limit', 'day', v_day, 'used', v_used,
      'balance', m.points_balance, 'level', m.level);
  end if;
  -- the n-th make-up of the month costs the n-th amount; past the list, the last one
  v_cost := coalesce((p_costs->>least(v_used, jsonb_array_length(p_costs) - 1))::integer, 0);
  if v_cost > 0 then
    v_spend := quanzi_points_change(p_appid, m.id, 'checkin_makeup',
      'makeup:' || m.id || ':' || v_day, 'makeup ' || v_day, p_now, p_today, p_week_start,
      -v_cost, false, null, p_levels);
    if v_spend->>'status' <> 'applied' then
      return jsonb_build_object('status', v_spend->>'status', 'day', v_day, 'cost', v_cost,
        'balance', m.points_balance, 'level', m.level);
    end if;
  end if;

  select coalesce(max(streak), 0) + 1 into v_streak from checkins
    where member_id = m.id and day = v_day - 1;
  insert into checkins (member_id, day, appid, streak, points, created_at, made_up_at)
    values (m.id, v_day, p_appid, v_streak, 0, p_now, p_now);
  -- the run that followed the filled day now continues it
  v_end := v_day;
  if exists (select 1 from checkins where member_id = m.id and day = v_day + 1) then
    select min(c.day) into v_end from checkins c
      where c.member_id = m.id and c.day > v_day
        and not exists (select 1 from checkins n where n.member_id = m.id and n.day = c.day + 1);
    update checkins set streak = v_streak + (day - v_day)
      where member_id = m.id and day > v_day and day <= v_end;
  end if;
  v_start := v_day - v_streak + 1;

  -- Streak bonuses the run now reaches on a day whose streak this make-up changed, unless the
  -- run already holds a bonus for that length (a check-in's bonus key is streak:<m>:<day>, a
  -- make-up's streak:<m>:<day>:<length>; the reference is 'streak <length>' for both).
  for v_n, v_amount in
    select key::integer, value::integer from jsonb_each_text(coalesce(p_bonuses, '{}'::jsonb))
      order by key::integer
  loop
    if v_amount > 0 and v_start + v_n - 1 between v_day and v_end and not exists (
      select 1 from points_ledger l
        where l.member_id = m.id and l.rule = 'streak_bonus'
          and l.reference = 'streak ' || v_n
          and split_part(l.idempotency_key, ':', 3) between v_start::text and v_end::text
    ) then
      v_extra := quanzi_points_change(p_appid, m.id, 'streak_bonus',
        'streak:' || m.id || ':' || (v_start + v_n - 1) || ':' || v_n, 'streak ' || v_n,
        p_now, p_today, p_week_start, v_amount, true, null, p_levels);
      if v_extra->>'status' = 'applied' then
        v_bonus := v_bonus + v_amount;
        v_paid := v_paid || jsonb_build_object('streak', v_n, 'points', v_amount,
          'day', v_start + v_n - 1);
      end if;
    end if;
  end loop;

  if coalesce(p_monthly, '{}'::jsonb) <> '{}'::jsonb then
    v_monthly := quanzi_checkin_monthly(p_appid, m.id, v_day, p_now, p_today, p_week_start,
      p_monthly, p_levels);
  end if;
  if v_bonus + coalesce((v_monthly->>'bonus')::integer, 0) > 0 then
    update checkins set points = v_bonus + coalesce((v_monthly->>'bonus')::integer, 0)
      where member_id = m.id and day = v_day;
  end if;

  select streak into v_current from checkins
    where member_id = m.id and day in (p_today, p_today - 1) order by day desc limit 1;
  select * into m from members where id = m.id;
  return jsonb_build_object('status', 'made_up', 'day', v_day, 'cost', v_cost,
    'used', v_used + 1, 'day_streak', v_streak, 'run_end', v_end,
    'streak', coalesce(v_current, 0), 'bonus', v_bonus, 'bonuses', v_paid,
    'monthly', v_monthly, 'balance', m.points_balance, 'lifetime', m.points_lifetime,
    'level', m.level, 'previous_level', v_previous_level);
end
$fn$`
