import { type Kysely, sql } from 'kysely'

/**
 * Points that follow the money (issue #15): what a purchase earns is **frozen** until its refund
 * window ends, then released; a refund takes it back.
 *
 * - `members.points_frozen`: Σ of the member's frozen ledger entries (never negative). Frozen
 *   points cannot be spent and do not count for levels until released.
 * - `points_ledger.state`: `available` (every entry so far, and `points_balance` is their Σ) or
 *   `frozen` (`points_frozen` is their Σ; `balance_after` is the frozen balance after the entry).
 * - `point_rules` gains `purchase`: its points per whole yuan paid (default 1), besides
 *   `first_purchase`.
 * - `purchase_grants`: one row per paid order — the points it earned and their state
 *   (frozen → released | cancelled), what refunds took back and what the balance could not cover
 *   (`points_shortfall`), and the membership days it bought and took back.
 *
 * Three functions, each one statement from TypeScript (like migrations/0007):
 *   quanzi_purchase_grant   at payment: the grant row and the frozen first_purchase and purchase
 *                           awards (rules, caps and the level multiplier as in quanzi_points_change)
 *   quanzi_points_release   one member (locked by the caller): every due frozen grant released
 *   quanzi_purchase_refund  at a refund's success: cancel (frozen) or deduct (released) the share
 *                           refunded so far, never below zero; membership days when all is refunded
 *   quanzi_purchase_grants_move  a mini-program member linked to a follower: its frozen points (a
 *                           frozen − and + entry) and its grants move to the follower
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table members add column points_frozen integer not null default 0
    constraint members_points_frozen_check check (points_frozen >= 0)`.execute(db)
  await sql`alter table points_ledger add column state text not null default 'available'
    constraint points_ledger_state_check check (state in ('available', 'frozen'))`.execute(db)
  await sql`insert into point_rules (appid, rule, points, cap_count, cap_period)
    values ('*', 'purchase', 1, null, null) on conflict do nothing`.execute(db)

  await sql`create table purchase_grants (
    order_id bigint primary key references orders (id),
    member_id bigint not null references members (id),
    -- the community's time zone at payment: the ledger day of the release and refund entries
    time_zone text not null,
    points integer not null default 0 check (points >= 0),
    points_status text not null default 'frozen'
      check (points_status in ('frozen', 'released', 'cancelled')),
    points_taken_back integer not null default 0,
    points_shortfall integer not null default 0,
    releases_at timestamptz not null,
    released_at timestamptz,
    membership_days integer not null default 0 check (membership_days >= 0),
    membership_days_taken_back integer not null default 0,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint purchase_grants_taken_back_check
      check (points_taken_back between 0 and points),
    constraint purchase_grants_shortfall_check
      check (points_shortfall between 0 and points_taken_back),
    constraint purchase_grants_membership_check
      check (membership_days_taken_back between 0 and membership_days)
  )`.execute(db)
  await sql`create index purchase_grants_due_idx on purchase_grants (releases_at)
    where points_status = 'frozen'`.execute(db)
  await sql`create index purchase_grants_member_idx on purchase_grants (member_id)
    where points_status = 'frozen'`.execute(db)
  await sql`create index purchase_grants_shortfall_idx on purchase_grants (updated_at)
    where points_shortfall > 0`.execute(db)

  // One frozen award of a rule for a purchase (0 when disabled, capped, used or worth nothing).
  await sql`
create function quanzi_purchase_freeze(
  p_member_id bigint, p_order_id bigint, p_rule text, p_key text, p_reference text,
  p_now timestamptz, p_day date, p_week_start date, p_units integer, p_levels jsonb
) returns integer language plpgsql as $fn$
declare
  m members%rowtype;
  r point_rules%rowtype;
  v_delta integer;
  v_count integer;
begin
  select * into m from members where id = p_member_id for update;
  if p_units < 1 then
    return 0;
  end if;
  select * into r from point_rules where rule = p_rule and appid in (m.appid, '*')
    order by appid = '*' limit 1;
  if not found or not r.enabled or r.points <= 0 then
    return 0;
  end if;
  if r.cap_count is not null and r.cap_period is not null then
    select count(*) into v_count from points_ledger
      where member_id = m.id and rule = p_rule
        and (r.cap_period <> 'day' or day = p_day)
        and (r.cap_period <> 'week' or day >= p_week_start);
    if v_count >= r.cap_count then
      return 0;
    end if;
  end if;
  select r.points * p_units * coalesce(max((l->>'multiplier')::integer), 1) into v_delta
    from jsonb_array_elements(p_levels) l where l->>'key' = m.level;
  insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
      balance_after, earned, day, created_at, state)
    values (m.appid, m.id, v_delta, p_rule, p_reference, p_key, m.points_frozen + v_delta, 0,
      p_day, p_now, 'frozen')
    on conflict (appid, idempotency_key) do nothing;
  if not found then
    return 0;
  end if;
  update members set points_frozen = points_frozen + v_delta where id = m.id;
  update purchase_grants set points = points + v_delta, updated_at = p_now
    where order_id = p_order_id;
  return v_delta;
end
$fn$`.execute(db)

  await sql`
create function quanzi_purchase_grant(
  p_member_id bigint, p_order_id bigint, p_reference text, p_now timestamptz, p_day date,
  p_week_start date, p_time_zone text, p_releases_at timestamptz, p_paid_fen integer,
  p_membership_days integer, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  v_first integer;
  v_purchase integer;
begin
  perform 1 from members where id = p_member_id for update;
  insert into purchase_grants (order_id, member_id, time_zone, releases_at, membership_days,
      created_at, updated_at)
    values (p_order_id, p_member_id, p_time_zone, p_releases_at, p_membership_days, p_now, p_now)
    on conflict (order_id) do nothing;
  if not found then
    return jsonb_build_object('status', 'duplicate');
  end if;
  v_first := quanzi_purchase_freeze(p_member_id, p_order_id, 'first_purchase',
    'first_purchase:' || p_member_id, p_reference, p_now, p_day, p_week_start, 1, p_levels);
  v_purchase := quanzi_purchase_freeze(p_member_id, p_order_id, 'purchase',
    'purchase:' || p_order_id, p_reference, p_now, p_day, p_week_start, p_paid_fen / 100,
    p_levels);
  return jsonb_build_object('status', 'granted', 'first_purchase', v_first,
    'purchase', v_purchase, 'points', v_first + v_purchase);
end
$fn$`.execute(db)

  await sql`
create function quanzi_points_release(p_member_id bigint, p_now timestamptz, p_levels jsonb)
returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
  g record;
  v_amount integer;
  v_day date;
  v_grants integer := 0;
  v_points integer := 0;
  v_level text;
  v_previous text;
begin
  select * into m from members where id = p_member_id for update;
  v_previous := m.level;
  for g in select pg.order_id, pg.points, pg.points_taken_back, pg.time_zone, o.out_trade_no
      from purchase_grants pg join orders o on o.id = pg.order_id
      where pg.member_id = m.id and pg.points_status = 'frozen' and pg.releases_at <= p_now
      order by pg.releases_at, pg.order_id
      for update of pg loop
    update purchase_grants set points_status = 'released', released_at = p_now,
        updated_at = p_now
      where order_id = g.order_id;
    v_grants := v_grants + 1;
    v_amount := g.points - g.points_taken_back;
    continue when v_amount = 0;
    v_day := (p_now at time zone g.time_zone)::date;
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, state)
      values (m.appid, m.id, -v_amount, 'points_release', 'order ' || g.out_trade_no,
        'points_release:' || g.order_id || ':frozen', m.points_frozen - v_amount, 0, v_day,
        p_now, 'frozen'),
      (m.appid, m.id, v_amount, 'points_release', 'order ' || g.out_trade_no,
        'points_release:' || g.order_id, m.points_balance + v_amount, v_amount, v_day, p_now,
        'available');
    m.points_frozen := m.points_frozen - v_amount;
    m.points_balance := m.points_balance + v_amount;
    m.points_lifetime := m.points_lifetime + v_amount;
    v_points := v_points + v_amount;
  end loop;
  if v_points > 0 then
    select l->>'key' into v_level from jsonb_array_elements(p_levels) l
      where (l->>'min')::integer <= m.points_lifetime
      order by (l->>'min')::integer desc limit 1;
    m.level := coalesce(v_level, m.level);
    update members set points_frozen = m.points_frozen, points_balance = m.points_balance,
        points_lifetime = m.points_lifetime, level = m.level
      where id = m.id;
  end if;
  return jsonb_build_object('member_id', m.id, 'grants', v_grants, 'points', v_points,
    'balance', m.points_balance, 'level', m.level, 'previous_level', v_previous);
end
$fn$`.execute(db)

  await sql`
create function quanzi_purchase_refund(
  p_order_id bigint, p_refund_id bigint, p_reference text, p_now timestamptz,
  p_refunded_fen integer, p_paid_fen integer
) returns jsonb language plpgsql as $fn$
declare
  g purchase_grants%rowtype;
  m members%rowtype;
  v_day date;
  v_target integer;
  v_take integer := 0;
  v_cancelled integer := 0;
  v_deducted integer := 0;
  v_shortfall integer := 0;
  v_days integer := 0;
  v_full boolean := p_refunded_fen >= p_paid_fen;
  v_member_id bigint;
begin
  select member_id into v_member_id from purchase_grants where order_id = p_order_id;
  if not found then
    return jsonb_build_object('status', 'no_grant');
  end if;
  -- the house lock order: member, then what belongs to it
  select * into m from members where id = v_member_id for update;
  select * into g from purchase_grants where order_id = p_order_id for update;
  v_day := (p_now at time zone g.time_zone)::date;
  -- the share of the points refunded so far; all of them once everything is refunded
  v_target := case when v_full then g.points
    else least(g.points, (g.points::bigint * greatest(p_refunded_fen, 0) / p_paid_fen)::integer) end;
  v_take := greatest(v_target - g.points_taken_back, 0);
  if v_take > 0 and g.points_status = 'frozen' then
    v_cancelled := v_take;
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, state)
      values (m.appid, m.id, -v_take, 'purchase_refund', p_reference,
        'purchase_refund:' || p_refund_id, m.points_frozen - v_take, 0, v_day, p_now, 'frozen');
    update members set points_frozen = points_frozen - v_take where id = m.id;
  elsif v_take > 0 then
    v_deducted := least(v_take, m.points_balance);
    v_shortfall := v_take - v_deducted;
    if v_deducted > 0 then
      insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
          balance_after, earned, day, created_at, state)
        values (m.appid, m.id, -v_deducted, 'purchase_refund', p_reference,
          'purchase_refund:' || p_refund_id, m.points_balance - v_deducted, 0, v_day, p_now,
          'available');
      update members set points_balance = points_balance - v_deducted where id = m.id;
    end if;
  end if;
  if v_full and g.membership_days > g.membership_days_taken_back then
    v_days := g.membership_days - g.membership_days_taken_back;
    -- the days this order bought, never ending the membership before now
    update memberships set updated_at = p_now,
        expires_at = least(expires_at, greatest(p_now, expires_at - make_interval(days => v_days)))
      where member_id = m.id;
  end if;
  update purchase_grants set
      points_taken_back = points_taken_back + v_take,
      points_shortfall = points_shortfall + v_shortfall,
      points_status = case when points_status = 'frozen' and v_full then 'cancelled'
        else points_status end,
      membership_days_taken_back = membership_days_taken_back + v_days,
      updated_at = p_now
    where order_id = p_order_id;
  return jsonb_build_object('status', 'taken_back', 'cancelled', v_cancelled,
    'deducted', v_deducted, 'shortfall', v_shortfall, 'membership_days', v_days);
end
$fn$`.execute(db)

  await sql`
create function quanzi_purchase_grants_move(
  p_from bigint, p_to bigint, p_key text, p_reference text, p_now timestamptz, p_day date
) returns jsonb language plpgsql as $fn$
declare
  f members%rowtype;
  t members%rowtype;
  v_grants integer;
begin
  perform 1 from members where id in (p_from, p_to) order by id for update;
  select * into f from members where id = p_from;
  select * into t from members where id = p_to;
  if f.points_frozen > 0 then
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, state)
      values (f.appid, f.id, -f.points_frozen, 'mp_link_out', p_reference, p_key, 0, 0, p_day,
        p_now, 'frozen'),
      (t.appid, t.id, f.points_frozen, 'mp_link_in', p_reference, p_key,
        t.points_frozen + f.points_frozen, 0, p_day, p_now, 'frozen');
    update members set points_frozen = 0 where id = f.id;
    update members set points_frozen = t.points_frozen + f.points_frozen where id = t.id;
  end if;
  update purchase_grants set member_id = t.id, updated_at = p_now where member_id = f.id;
  get diagnostics v_grants = row_count;
  return jsonb_build_object('frozen', f.points_frozen, 'grants', v_grants);
end
$fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function quanzi_purchase_grants_move`.execute(db)
  await sql`drop function quanzi_purchase_refund`.execute(db)
  await sql`drop function quanzi_points_release`.execute(db)
  await sql`drop function quanzi_purchase_grant`.execute(db)
  await sql`drop function quanzi_purchase_freeze`.execute(db)
  await sql`drop table purchase_grants`.execute(db)
  await sql`delete from point_rules where appid = '*' and rule = 'purchase'`.execute(db)
  await sql`alter table points_ledger drop column state`.execute(db)
  await sql`alter table members drop column points_frozen`.execute(db)
}
