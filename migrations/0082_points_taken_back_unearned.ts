import { type Kysely, sql } from 'kysely'

/**
 * Points that were never earned stop counting as earned, and points given back keep their expiry.
 *
 * - `points_ledger.earned` may be negative on an entry that adds nothing to the balance: a refund of
 *   a purchase whose points were released takes back what the release counted as earned (lifetime and
 *   the level derived from it; the weekly board leaves such entries out, src/community/leaderboard.ts) — all of the share taken back,
 *   also the part the balance could not cover (`points_shortfall`), so such an entry may have
 *   `delta` 0 (nothing left to deduct) with `earned` < 0. `delta <> 0` becomes
 *   `delta <> 0 or earned <> 0`; `earned >= 0` becomes `earned >= 0 or delta <= 0`.
 * - `quanzi_purchase_refund` (migrations/0035) takes the level table (`p_levels`, as the release
 *   does): the released share it takes back lowers `points_lifetime` (never below zero) and the level.
 * - `quanzi_purchase_grants_move` (migrations/0035, a 绑定: src/shop/mp-link.ts) also moves the
 *   mini-program member's lifetime (an `mp_link_out` entry of `earned` −lifetime and an `mp_link_in`
 *   of +lifetime, `delta` 0, key `p_lifetime_key`), so a purchase released before the 绑定 counts
 *   for the follower's level as one released after it does. Mini-program members linked before
 *   this migration (`mp_users.member_id` names another member than the mini-program's own, the
 *   member of the same appid and openid) have their lifetime moved now, with the same entries and
 *   key: their grants follow the follower, and a refund takes the lifetime back from there. The
 *   down leaves these entries (and the lifetime) where they are.
 * - `points_lot_uses`: what a redemption (`redeem`) took from which lot (the lots trigger,
 *   migrations/0043, records it). Cancelling the redemption (src/community/rewards.ts
 *   `returnRedemption`) gives the points back to those lots — with their expiry — instead of as a
 *   new lot; redemptions from before this migration have no record and still come back as a new lot.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table points_ledger drop constraint points_ledger_delta_check,
    drop constraint points_ledger_earned_check,
    add constraint points_ledger_delta_check check (delta <> 0 or earned <> 0),
    add constraint points_ledger_earned_check check (earned >= 0 or delta <= 0)`.execute(db)

  await sql`drop function quanzi_purchase_refund(bigint, bigint, text, timestamptz, integer, integer)`.execute(
    db,
  )
  await sql.raw(REFUND).execute(db)
  await sql`drop function quanzi_purchase_grants_move(bigint, bigint, text, text, timestamptz, date)`.execute(
    db,
  )
  await sql.raw(MOVE).execute(db)

  await sql`create table points_lot_uses (
    spend_id bigint not null references points_ledger (id),
    lot_id bigint not null references points_lots (ledger_id),
    points integer not null check (points > 0),
    primary key (spend_id, lot_id)
  )`.execute(db)
  await sql.raw(lotsTrigger(true)).execute(db)
  await sql.raw(MOVE_LINKED).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(lotsTrigger(false)).execute(db)
  await sql`drop table points_lot_uses`.execute(db)
  await sql`drop function quanzi_purchase_grants_move(bigint, bigint, text, text, timestamptz, date, text, jsonb)`.execute(
    db,
  )
  await sql.raw(MOVE_0035).execute(db)
  await sql`drop function quanzi_purchase_refund(bigint, bigint, text, timestamptz, integer, integer, jsonb)`.execute(
    db,
  )
  await sql.raw(REFUND_0035).execute(db)
  // entries written since may not hold the old checks: kept for new rows only
  await sql`alter table points_ledger drop constraint points_ledger_delta_check,
    drop constraint points_ledger_earned_check,
    add constraint points_ledger_delta_check check (delta <> 0) not valid,
    add constraint points_ledger_earned_check check (earned >= 0) not valid`.execute(db)
}

/** The level for a lifetime `v` (the `p_levels` table), as quanzi_points_release picks it. */
const LEVEL_FOR = (v: string, into: string) => `select l->>'key' into ${into}
      from jsonb_array_elements(p_levels) l where (l->>'min')::integer <= ${v}
      order by (l->>'min')::integer desc limit 1;`

/** The refund's common part: `taken` is the branch for released points. */
const refund = (signature: string, released: string, declare = '') => `
create function quanzi_purchase_refund(
  ${signature}
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
  v_member_id bigint;${declare}
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
    v_shortfall := v_take - v_deducted;${released}
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
$fn$`

const REFUND = refund(
  `p_order_id bigint, p_refund_id bigint, p_reference text, p_now timestamptz,
  p_refunded_fen integer, p_paid_fen integer, p_levels jsonb`,
  `
    -- the release counted them as earned: all of them go from lifetime, spent or not
    v_unearned := least(v_take, greatest(m.points_lifetime, 0));
    if v_deducted > 0 or v_unearned > 0 then
      ${LEVEL_FOR('m.points_lifetime - v_unearned', 'v_level')}
      insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
          balance_after, earned, day, created_at, state)
        values (m.appid, m.id, -v_deducted, 'purchase_refund', p_reference,
          'purchase_refund:' || p_refund_id, m.points_balance - v_deducted, -v_unearned, v_day,
          p_now, 'available');
      update members set points_balance = points_balance - v_deducted,
          points_lifetime = points_lifetime - v_unearned, level = coalesce(v_level, level)
        where id = m.id;
    end if;`,
  `
  v_unearned integer := 0;
  v_level text;`,
)

const REFUND_0035 = refund(
  `p_order_id bigint, p_refund_id bigint, p_reference text, p_now timestamptz,
  p_refunded_fen integer, p_paid_fen integer`,
  `
    if v_deducted > 0 then
      insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
          balance_after, earned, day, created_at, state)
        values (m.appid, m.id, -v_deducted, 'purchase_refund', p_reference,
          'purchase_refund:' || p_refund_id, m.points_balance - v_deducted, 0, v_day, p_now,
          'available');
      update members set points_balance = points_balance - v_deducted where id = m.id;
    end if;`,
)

/** quanzi_purchase_grants_move: `lifetime` moves the lifetime too (after the frozen points). */
const move = (signature: string, lifetime: string, declare = '') => `
create function quanzi_purchase_grants_move(
  ${signature}
) returns jsonb language plpgsql as $fn$
declare
  f members%rowtype;
  t members%rowtype;
  v_grants integer;${declare}
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
  end if;${lifetime}
  update purchase_grants set member_id = t.id, updated_at = p_now where member_id = f.id;
  get diagnostics v_grants = row_count;
  return jsonb_build_object('frozen', f.points_frozen, 'grants', v_grants);
end
$fn$`

const MOVE = move(
  `p_from bigint, p_to bigint, p_key text, p_reference text, p_now timestamptz, p_day date,
  p_lifetime_key text, p_levels jsonb`,
  `
  -- what the member earned counts for the follower's level, as a release after the 绑定 would;
  -- the balance itself moved before (mp-link.ts): these entries move no points (delta 0)
  if f.points_lifetime > 0 then
    ${LEVEL_FOR('t.points_lifetime + f.points_lifetime', 'v_level')}
    ${LEVEL_FOR('0', 'v_bottom')}
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, state)
      values (f.appid, f.id, 0, 'mp_link_out', p_reference, p_lifetime_key, f.points_balance,
        -f.points_lifetime, p_day, p_now, 'available'),
      (t.appid, t.id, 0, 'mp_link_in', p_reference, p_lifetime_key, t.points_balance,
        f.points_lifetime, p_day, p_now, 'available');
    update members set points_lifetime = 0, level = coalesce(v_bottom, level) where id = f.id;
    update members set points_lifetime = t.points_lifetime + f.points_lifetime,
        level = coalesce(v_level, level)
      where id = t.id;
  end if;`,
  `
  v_level text;
  v_bottom text;`,
)

const MOVE_0035 = move(
  'p_from bigint, p_to bigint, p_key text, p_reference text, p_now timestamptz, p_day date',
  '',
)

/** The level table (src/community/levels.ts) when this migration was written. */
const LEVELS_0082 = JSON.stringify([
  { key: 'bronze', min: 0 },
  { key: 'silver', min: 1_000 },
  { key: 'gold', min: 5_000 },
  { key: 'diamond', min: 20_000 },
])

/**
 * The lifetime of mini-program members linked before this migration goes to their followers, as
 * quanzi_purchase_grants_move moves it now (same entries, same key: run again, it moves nothing).
 */
const MOVE_LINKED = `
do $do$
declare
  p_levels jsonb := '${LEVELS_0082}';
  r record;
  f members%rowtype;
  t members%rowtype;
  v_key text;
  v_level text;
  v_bottom text;
begin
  for r in select m.id as from_id, u.member_id as to_id
      from mp_users u join members m on m.appid = u.appid and m.openid = u.openid
      where u.member_id <> m.id and m.points_lifetime > 0
      order by m.id
  loop
    perform 1 from members where id in (r.from_id, r.to_id) order by id for update;
    select * into f from members where id = r.from_id;
    select * into t from members where id = r.to_id;
    v_key := 'mp-link:' || f.id || ':' || t.id || ':lifetime';
    continue when f.points_lifetime <= 0 or exists (select 1 from points_ledger
      where appid = f.appid and idempotency_key = v_key);
    ${LEVEL_FOR('t.points_lifetime + f.points_lifetime', 'v_level')}
    ${LEVEL_FOR('0', 'v_bottom')}
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, state)
      values (f.appid, f.id, 0, 'mp_link_out', 'member ' || f.id, v_key, f.points_balance,
        -f.points_lifetime, current_date, now(), 'available'),
      (t.appid, t.id, 0, 'mp_link_in', 'member ' || f.id, v_key, t.points_balance,
        f.points_lifetime, current_date, now(), 'available');
    update members set points_lifetime = 0, level = coalesce(v_bottom, level) where id = f.id;
    update members set points_lifetime = t.points_lifetime + f.points_lifetime,
        level = coalesce(v_level, level)
      where id = t.id;
  end loop;
end
$do$`

/** The lots trigger of migrations/0043; `uses` also records what a redemption took from which lot. */
const lotsTrigger = (uses: boolean) => `
create or replace function quanzi_points_lots() returns trigger language plpgsql as $fn$
begin
  if new.state <> 'available' then
    return null;
  end if;
  if new.delta > 0 then
    insert into points_lots (ledger_id, appid, member_id, points, remaining, earned_at, expires_at)
      values (new.id, new.appid, new.member_id, new.delta, new.delta, new.created_at,
        new.expires_at);${
          uses
            ? `
  elsif new.delta < 0 and new.rule = 'redeem' then
    -- as below, and what each lot gave is recorded: a cancellation gives it back to that lot
    with o as (select ledger_id, remaining, sum(remaining) over (order by ledger_id) as upto
        from points_lots where member_id = new.member_id and remaining > 0),
      used as (update points_lots p
        set remaining = p.remaining - least(p.remaining, -new.delta - (o.upto - p.remaining))
        from o
        where p.ledger_id = o.ledger_id and o.upto - p.remaining < -new.delta
        returning p.ledger_id, o.remaining - p.remaining as points)
    insert into points_lot_uses (spend_id, lot_id, points)
      select new.id, ledger_id, points from used where points > 0;
  elsif new.delta < 0 and new.rule <> 'points_expiry' then`
            : `
  elsif new.rule <> 'points_expiry' then`
        }
    -- the oldest lots first: each gives what the spend still needs after the older ones
    update points_lots p
      set remaining = p.remaining - least(p.remaining, -new.delta - (o.upto - p.remaining))
      from (select ledger_id, sum(remaining) over (order by ledger_id) as upto
          from points_lots where member_id = new.member_id and remaining > 0) o
      where p.ledger_id = o.ledger_id and o.upto - p.remaining < -new.delta;
  end if;
  return null;
end
$fn$`
