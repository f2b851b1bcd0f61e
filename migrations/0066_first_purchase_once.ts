import { type Kysely, sql } from 'kysely'

/**
 * `first_purchase` once per person: a mini-program member who bought (and earned it) and then linked
 * to their follower with 绑定 moved their purchases to the follower (src/shop/mp-link.ts), whose own
 * key `first_purchase:<follower id>` was still unused — their next purchase paid it again. The grant
 * now pays it only for the member's first purchase by count (`purchase_count`, which the payment
 * has already raised for this order and which a 绑定 adds up), besides its once-per-member key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
create or replace function quanzi_purchase_grant(
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
  -- the member's first purchase: the payment counted it already (orders.ts), and purchases a 绑定
  -- moved here (mp-link.ts) count too, so a person earns first_purchase once
  if (select purchase_count from members where id = p_member_id) <= 1 then
    v_first := quanzi_purchase_freeze(p_member_id, p_order_id, 'first_purchase',
      'first_purchase:' || p_member_id, p_reference, p_now, p_day, p_week_start, 1, p_levels);
  else
    v_first := 0;
  end if;
  v_purchase := quanzi_purchase_freeze(p_member_id, p_order_id, 'purchase',
    'purchase:' || p_order_id, p_reference, p_now, p_day, p_week_start, p_paid_fen / 100,
    p_levels);
  return jsonb_build_object('status', 'granted', 'first_purchase', v_first,
    'purchase', v_purchase, 'points', v_first + v_purchase);
end
$fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
create or replace function quanzi_purchase_grant(
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
}
