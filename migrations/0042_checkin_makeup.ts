import { type Kysely, sql } from 'kysely'

/**
 * Make-up check-ins (补签) and cumulative monthly check-in rewards (累计签到), issue #19.
 *
 * - `checkins.made_up_at`: set when a make-up filled the day (null for a check-in on the day).
 *   Make-ups per month are counted from it.
 *
 * Three functions, each one statement from TypeScript (like migrations/0007), every spend and
 * award through `quanzi_points_change` (so its rules — idempotency, never negative, and whatever
 * consumption policy it applies — hold for make-ups too):
 *
 *   quanzi_checkin_monthly  the member's check-ins in the month of p_day; each configured
 *                           threshold (days → points) reached and not yet paid is paid once
 *                           (key `monthly:<member>:<YYYY-MM>:<days>`). The caller holds the member.
 *   quanzi_checkin_day      today's check-in: `quanzi_checkin` (0007, unchanged) and then the
 *                           monthly rewards of today's month, in one statement
 *   quanzi_checkin_makeup   fills one missed day: member locked; the day picked (p_day null → the
 *                           latest missed day from p_earliest to yesterday) and checked (after the
 *                           follow, not checked in, the month's limit); the cost spent (rule
 *                           `checkin_makeup`, key `makeup:<member>:<day>`); the check-in row
 *                           inserted; the streaks of the run after it recomputed; the streak
 *                           bonuses the longer run reaches paid where no bonus for that length
 *                           was paid inside the run (key `streak:<member>:<day>:<length>`); the
 *                           monthly rewards of the filled day's month
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkins add column made_up_at timestamptz`.execute(db)

  await sql`
create function quanzi_checkin_monthly(
  p_appid text, p_member_id bigint, p_day date, p_now timestamptz, p_today date,
  p_week_start date, p_rewards jsonb, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  v_month date := date_trunc('month', p_day)::date;
  v_days integer;
  v_n integer;
  v_amount integer;
  v_bonus integer := 0;
  v_paid jsonb := '[]'::jsonb;
  v_award jsonb;
begin
  select count(*) into v_days from checkins
    where member_id = p_member_id and day >= v_month
      and day < (v_month + interval '1 month')::date;
  for v_n, v_amount in
    select key::integer, value::integer from jsonb_each_text(coalesce(p_rewards, '{}'::jsonb))
      order by key::integer
  loop
    if v_days >= v_n and v_amount > 0 then
      v_award := quanzi_points_change(p_appid, p_member_id, 'monthly_checkin',
        'monthly:' || p_member_id || ':' || to_char(v_month, 'YYYY-MM') || ':' || v_n,
        'month ' || to_char(v_month, 'YYYY-MM') || ' ' || v_n, p_now, p_today, p_week_start,
        v_amount, true, null, p_levels);
      if v_award->>'status' = 'applied' then
        v_bonus := v_bonus + v_amount;
        v_paid := v_paid || jsonb_build_object('days', v_n, 'points', v_amount);
      end if;
    end if;
  end loop;
  return jsonb_build_object('days', v_days, 'bonus', v_bonus, 'paid', v_paid);
end
$fn$`.execute(db)

  await sql`
create function quanzi_checkin_day(
  p_appid text, p_member_id bigint, p_now timestamptz, p_day date, p_week_start date,
  p_bonuses jsonb, p_monthly jsonb, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  v_result jsonb;
  v_monthly jsonb;
  m members%rowtype;
begin
  v_result := quanzi_checkin(p_appid, p_member_id, p_now, p_day, p_week_start, p_bonuses,
    p_levels);
  if v_result->>'status' <> 'checked_in' or coalesce(p_monthly, '{}'::jsonb) = '{}'::jsonb then
    return v_result;
  end if;
  v_monthly := quanzi_checkin_monthly(p_appid, p_member_id, p_day, p_now, p_day, p_week_start,
    p_monthly, p_levels);
  if (v_monthly->>'bonus')::integer > 0 then
    update checkins set points = points + (v_monthly->>'bonus')::integer
      where member_id = p_member_id and day = p_day;
  end if;
  select * into m from members where id = p_member_id;
  return v_result || jsonb_build_object('monthly', v_monthly, 'balance', m.points_balance,
    'lifetime', m.points_lifetime, 'level', m.level);
end
$fn$`.execute(db)

  await sql`
create function quanzi_checkin_makeup(
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
  select * into m from members where id = p_member_id for update;
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
$fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function quanzi_checkin_makeup`.execute(db)
  await sql`drop function quanzi_checkin_day`.execute(db)
  await sql`drop function quanzi_checkin_monthly`.execute(db)
  await sql`alter table checkins drop column made_up_at`.execute(db)
}
