import { type Kysely, sql } from 'kysely'

/**
 * Durable analytics facts (issue #16), outliving the 7-day inbound dedupe table:
 *
 *   member_days    one row per member and community day they did anything, with the kinds of
 *                  activity as bits (ACTIVITY in src/analytics/facts.ts). Written by the push's own
 *                  statement (`quanzi_receive`, replaced here): on the member's first action of the
 *                  day, their first ordinary message and their first menu click of the day — at
 *                  most three writes per member and day, no extra round trip. Check-ins, purchases, sign-ups and tracked
 *                  link clicks are OR-ed in by the daily rollup from their own tables.
 *   follow_events  every follow and unfollow with its QR scene and acquisition source (`invite`:
 *                  an invite QR `inv_…`; `qr`: any other parametric QR, e.g. a campaign poster;
 *                  `organic`: search, profile card, article …), also written by `quanzi_receive`.
 *   analytics_daily  the rollups: one value per (account, metric, community day, dimension), so
 *                  every series is one index range scan.
 *
 * History already in the database is carried over: activity days from check-ins and daily_login
 * awards, follows and unfollows from the members' own timestamps.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table member_days (
    appid text not null,
    day date not null,
    member_id bigint not null references members (id),
    kinds smallint not null default 0,
    primary key (appid, day, member_id)
  )`.execute(db)
  await sql`create index member_days_member_idx on member_days (member_id, day)`.execute(db)
  await sql`create table follow_events (
    id bigserial primary key,
    appid text not null,
    member_id bigint not null references members (id),
    at timestamptz not null,
    day date not null,
    kind text not null check (kind in ('follow', 'unfollow')),
    scene text,
    source text not null check (source in ('invite', 'qr', 'organic'))
  )`.execute(db)
  await sql`create index follow_events_day_idx on follow_events (appid, day, kind)`.execute(db)
  await sql`create index follow_events_member_idx on follow_events (member_id, at)`.execute(db)
  await sql`create table analytics_daily (
    appid text not null,
    metric text not null,
    day date not null,
    dim text not null default '',
    value double precision not null,
    primary key (appid, metric, day, dim)
  )`.execute(db)
  await sql`create table analytics_days (
    appid text not null,
    day date not null,
    built_at timestamptz not null,
    primary key (appid, day)
  )`.execute(db)

  // The source of a follow, from its QR scene (see src/community/invites.ts for inv_ scenes).
  await sql`create function quanzi_follow_source(p_scene text) returns text
    language sql immutable as $fn$
      select case when p_scene ~ '^inv_[2-9A-HJ-NP-Z]{8}(_[A-Za-z0-9-]{1,40})?$' then 'invite'
        when p_scene is not null then 'qr' else 'organic' end
    $fn$`.execute(db)

  // Backfill (the community day of each fact in the account's time zone is not known here: the
  // ledger and check-ins carry their own local days; follows use Asia/Shanghai, the default).
  await sql`insert into member_days (appid, day, member_id, kinds)
    select appid, day, member_id, 2 from checkins
    on conflict do nothing`.execute(db)
  await sql`insert into member_days (appid, day, member_id, kinds)
    select appid, day, member_id, 32 from points_ledger where rule = 'daily_login'
    on conflict (appid, day, member_id) do update set kinds = member_days.kinds | excluded.kinds`.execute(
    db,
  )
  await sql`insert into follow_events (appid, member_id, at, day, kind, scene, source)
    select appid, id, subscribed_at, (subscribed_at at time zone 'Asia/Shanghai')::date, 'follow',
      subscribe_scene, quanzi_follow_source(subscribe_scene)
    from members where subscribed_at is not null`.execute(db)
  await sql`insert into follow_events (appid, member_id, at, day, kind, scene, source)
    select appid, id, unsubscribed_at, (unsubscribed_at at time zone 'Asia/Shanghai')::date,
      'unfollow', subscribe_scene, quanzi_follow_source(subscribe_scene)
    from members where unsubscribed_at is not null`.execute(db)

  // quanzi_receive of migrations/0007 plus the two facts above (same signature: the overload of
  // 0019 keeps calling it).
  await sql.raw(receiveFunction(FACTS)).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(receiveFunction('')).execute(db)
  await sql`drop table analytics_days, analytics_daily, follow_events, member_days`.execute(db)
  await sql`drop function quanzi_follow_source`.execute(db)
}

/** The facts quanzi_receive records (see above). */
const FACTS = `  -- The activity day: on the first member action of the day, and on the first ordinary message.
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
`

/** quanzi_receive with `facts` after the member upsert (empty: migrations/0007's behaviour). */
const receiveFunction = (facts: string) => `
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
  insert into members as t (appid, openid, subscribed, subscribed_at, unsubscribed_at,
      subscribe_scene, subscribe_event_key, first_seen_at, last_active_at, last_inbound_at)
    values (p_appid, p_openid, coalesce(p_subscribed, false),
      case when p_follow then p_now end, case when p_unsubscribe then p_now end,
      p_scene, p_event_key, p_now, case when p_active then p_now end,
      case when p_inbound then p_now end)
    on conflict (appid, openid) do update set
      last_active_at = case when p_active then p_now else t.last_active_at end,
      last_inbound_at = case when p_inbound then p_now else t.last_inbound_at end,
      subscribed = coalesce(p_subscribed, t.subscribed),
      subscribed_at = case when p_subscribe then p_now else t.subscribed_at end,
      unsubscribed_at = case when p_unsubscribe then p_now else t.unsubscribed_at end,
      subscribe_scene = case when p_follow then p_scene else t.subscribe_scene end,
      subscribe_event_key = case when p_follow then p_event_key else t.subscribe_event_key end
    -- xmax is 0 only for a row this statement inserted: racing first pushes agree on one new.
    returning t.id, t.xmax::text = '0' into v_id, v_new;
  select * into m from members where id = v_id;
${facts}  if p_daily_login and (v_previous is null or (v_previous at time zone p_time_zone)::date <> p_day) then
    v_award := quanzi_points_change(p_appid, m.id, 'daily_login',
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
