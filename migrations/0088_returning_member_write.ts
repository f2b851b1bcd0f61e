import { type Kysely, sql } from 'kysely'

/**
 * What a push from a returning member writes, made smaller (issue #20 target 3; measured in
 * bench/README.md, "session 29: what a push writes on PostgreSQL"). The same results and rows.
 *
 * - `quanzi_receive` writes a member found by its first read with a plain `update … returning`
 *   (the row it returns is the `m` the function goes on with) instead of `insert … on conflict do
 *   update` and a read of the row after it. The upsert's conflict path locks the row before
 *   updating it — a heap lock record in the WAL of every push (≈ 55 bytes) — and the function then
 *   read the row a third time. A member the first read did not find, or one gone before the update
 *   (the update finds no row), takes the upsert as before, so racing first pushes still agree on
 *   one new member (`xmax` 0 only for the row the statement inserted). Concurrent pushes of one
 *   member still wait on its row lock: the update re-reads the row after the wait, as the upsert
 *   did, and `previous_active_at` is read before it as before.
 * - `replay_claims_ts_idx` is dropped: its one reader is the daily prune (`ts < now − the freshness
 *   window`), which deletes every claim but the last minutes' — a sequential scan is its plan with
 *   the index or without —, and it cost every signed push an index entry.
 *
 * Deploying: dropping the index takes a brief exclusive lock on `replay_claims` (signed pushes
 * wait for it, milliseconds).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(receive(true)).execute(db)
  await sql`drop index replay_claims_ts_idx`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`create index replay_claims_ts_idx on replay_claims (ts)`.execute(db)
  await sql.raw(receive(false)).execute(db)
}

/** The member's columns a push sets (the upsert's and the update's `set` list). */
const SET = `
      last_active_at = case when p_active then p_now else t.last_active_at end,
      last_inbound_at = case when p_inbound then p_now else t.last_inbound_at end,
      subscribed = coalesce(p_subscribed, t.subscribed),
      subscribed_at = case when p_subscribe then p_now else t.subscribed_at end,
      unsubscribed_at = case when p_unsubscribe then p_now else t.unsubscribed_at end,
      subscribe_scene = case when p_follow then p_scene else t.subscribe_scene end,
      subscribe_event_key = case when p_follow then p_event_key else t.subscribe_event_key end`

/** The upsert of migration 0057 (a new member, or one the update did not find). */
const UPSERT = `insert into members as t (appid, openid, subscribed, subscribed_at, unsubscribed_at,
      subscribe_scene, subscribe_event_key, first_seen_at, last_active_at, last_inbound_at)
    values (p_appid, p_openid, coalesce(p_subscribed, false),
      case when p_follow then p_now end, case when p_unsubscribe then p_now end,
      p_scene, p_event_key, p_now, case when p_active then p_now end,
      case when p_inbound then p_now end)
    on conflict (appid, openid) do update set${SET}
    -- xmax is 0 only for a row this statement inserted: racing first pushes agree on one new.
    returning t.id, t.xmax::text = '0' into v_id, v_new;
  select * into m from members where id = v_id;`

/**
 * `quanzi_receive` (19 arguments); `updateFirst`: this migration's, else migration 0057's (for
 * `down`). The rest of the body is 0057's unchanged.
 */
const receive = (updateFirst: boolean) => `
create or replace function quanzi_receive(
  p_appid text, p_dedupe_key text, p_openid text, p_msg_type text, p_event text,
  p_now timestamptz, p_active boolean, p_inbound boolean, p_subscribed boolean,
  p_subscribe boolean, p_unsubscribe boolean, p_follow boolean, p_scene text, p_event_key text,
  p_daily_login boolean, p_time_zone text, p_day date, p_week_start date, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
  v_previous timestamptz;
  v_previous_inbound timestamptz;
  v_id bigint;
  v_new boolean;
  v_award jsonb := null;
  v_kinds smallint;
begin
  insert into inbound_events (appid, dedupe_key, openid, msg_type, event, status, received_at)
    values (p_appid, p_dedupe_key, p_openid, p_msg_type, p_event, 'processing', p_now)
    on conflict (appid, dedupe_key) do nothing;
  if not found then
    return jsonb_build_object('claimed', false);
  end if;
  select last_active_at, last_inbound_at into v_previous, v_previous_inbound from members
    where appid = p_appid and openid = p_openid;
${
  updateFirst
    ? `  if found then
    -- A returning member: updated in place (no upsert's lock record), the row returned as m.
    update members as t set${SET}
      where t.appid = p_appid and t.openid = p_openid
      returning t.* into m;
  end if;
  if m.id is not null then
    v_id := m.id;
    v_new := false;
  else
    ${UPSERT}
  end if;`
    : `  ${UPSERT}`
}
  -- The activity day: on the first member action of the day, and on the first ordinary message.
  v_kinds := (case when p_inbound then 1 else 0 end)
    | (case when p_event in ('CLICK', 'VIEW', 'view_miniprogram') then 4 else 0 end)
    | (case when p_inbound or p_event in ('CLICK', 'VIEW', 'view_miniprogram') then 0 else 32 end);
  -- A menu click or view (bit 4) is recorded whenever it happens: an extra row probe, no write
  -- once the day's bit is set.
  if (p_daily_login and (v_previous is null or (v_previous at time zone p_time_zone)::date <> p_day))
    or (p_inbound and (v_previous_inbound is null
      or (v_previous_inbound at time zone p_time_zone)::date <> p_day))
    or (v_kinds & 4) <> 0 then
    insert into member_days as d (appid, day, member_id, kinds) values (p_appid, p_day, v_id, v_kinds)
      on conflict (appid, day, member_id) do update set kinds = d.kinds | excluded.kinds
      where d.kinds & excluded.kinds <> excluded.kinds;
  end if;
  if p_subscribe or p_unsubscribe then
    insert into follow_events (appid, member_id, at, day, kind, scene, source)
      values (p_appid, v_id, p_now, p_day, case when p_subscribe then 'follow' else 'unfollow' end,
        m.subscribe_scene, quanzi_follow_source(m.subscribe_scene));
  end if;
  if p_daily_login and (v_previous is null or (v_previous at time zone p_time_zone)::date <> p_day) then
    -- the ${updateFirst ? 'update or upsert' : 'upsert'} above holds the member's row lock: m is the locked row
    v_award := quanzi_points_change_locked(m, p_appid, 'daily_login',
      'daily_login:' || m.id || ':' || p_day, null, p_now, p_day, p_week_start, null, true, null,
      p_levels);
    if v_award->>'status' = 'applied' then
      m.points_balance := (v_award->>'balance')::integer;
      m.points_lifetime := (v_award->>'lifetime')::integer;
      m.level := v_award->>'level';
    end if;
  end if;
  return jsonb_build_object('claimed', true, 'member', to_jsonb(m), 'is_new', v_new,
    'previous_active_at', v_previous, 'daily_login', v_award);
end
$fn$`
