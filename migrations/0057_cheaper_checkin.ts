import { type Kysely, sql } from 'kysely'

/**
 * A cheaper first check-in (issue #20 target 4): the same results and rows, less work per award
 * and per push. Measured in bench/README.md ("Check-in end to end").
 *
 * - `quanzi_points_change_locked(m, …)`: the body of `quanzi_points_change` for a caller that holds
 *   the member row already (`m` read under its lock). `quanzi_points_change` locks and calls it;
 *   `quanzi_checkin` and `quanzi_receive` (which lock or upsert the row themselves) call it
 *   directly, so an award no longer reads and locks the member a second time, and the check-in
 *   returns the balance it tracked instead of reading the member a third time.
 * - The idempotency key is no longer probed before the insert that checks it anyway
 *   (`on conflict do nothing`): only an award about to be refused (disabled, capped,
 *   insufficient, a zero delta) looks the key up first, so a repeated key still answers
 *   `duplicate` before any other status, as before.
 * - `points_lots_notice_idx` holds stamped lots only (`expires_at is not null`): a new lot is
 *   unstamped and every notice query asks for an expiry within the window, so a lot enters this
 *   index when the daily job stamps it (that update writes the index entries anyway), not at
 *   every award too.
 * - `inbound_events_follow_up_idx` is dropped: nothing reads it (no query asks for
 *   `status = 'follow_up'`), and its predicate on `status` made every reply store a non-HOT
 *   update (new entries in every index of the table). `inbound_events` gets fillfactor 50, so the
 *   reply usually fits on the claim's page and the update stays HOT (new pages only; about twice
 *   the table's pages, which the daily prune keeps short).
 *
 * Deploying: the notice index is rebuilt inside the migration's transaction (not CONCURRENTLY),
 * so `points_lots` takes no inserts — no awards — until it commits: seconds per million lots. A
 * duplicate idempotency key now spends a ledger id (the insert's `on conflict do nothing`), so
 * ledger ids have gaps; nothing reads them as a count (lots spend in `ledger_id` order still).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(LOCKED).execute(db)
  await sql.raw(POINTS_CHANGE).execute(db)
  await sql.raw(CHECKIN).execute(db)
  await sql.raw(receive(true)).execute(db)
  await sql`drop index points_lots_notice_idx`.execute(db)
  await sql`create index points_lots_notice_idx on points_lots (member_id, expires_at)
    where remaining > 0 and not notified and expires_at is not null`.execute(db)
  await sql`drop index inbound_events_follow_up_idx`.execute(db)
  await sql`alter table inbound_events set (fillfactor = 50)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table inbound_events reset (fillfactor)`.execute(db)
  await sql`create index inbound_events_follow_up_idx on inbound_events (appid, received_at)
    where status = 'follow_up'`.execute(db)
  await sql`drop index points_lots_notice_idx`.execute(db)
  await sql`create index points_lots_notice_idx on points_lots (member_id, expires_at)
    where remaining > 0 and not notified`.execute(db)
  await sql.raw(receive(false)).execute(db)
  await sql.raw(CHECKIN_0007).execute(db)
  await sql.raw(POINTS_CHANGE_0007).execute(db)
  await sql`drop function quanzi_points_change_locked`.execute(db)
}

/** The refusals' common answer: the member's figures unchanged. */
const UNCHANGED = `'balance', m.points_balance, 'lifetime', m.points_lifetime, 'level', m.level`

const LOCKED = `
create function quanzi_points_change_locked(
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
    select r.points * coalesce(max((l->>'multiplier')::integer), 1) into v_delta
      from jsonb_array_elements(p_levels) l where l->>'key' = m.level;
  end if;
  v_earned := case when p_earned then greatest(v_delta, 0) else 0 end;
  select l->>'key' into v_level from jsonb_array_elements(p_levels) l
    where (l->>'min')::integer <= m.points_lifetime + v_earned
    order by (l->>'min')::integer desc limit 1;
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

const POINTS_CHANGE = `
create or replace function quanzi_points_change(
  p_appid text, p_member_id bigint, p_rule text, p_key text, p_reference text,
  p_now timestamptz, p_day date, p_week_start date, p_delta integer, p_earned boolean,
  p_expires_at timestamptz, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
begin
  select * into m from members where id = p_member_id for update;
  if not found then
    raise exception 'quanzi: member % does not exist', p_member_id;
  end if;
  return quanzi_points_change_locked(m, p_appid, p_rule, p_key, p_reference, p_now, p_day,
    p_week_start, p_delta, p_earned, p_expires_at, p_levels);
end
$fn$`

/** After an award's answer (any status carries them): the member's figures it leaves. */
const TRACK = (v: string) => `m.points_balance := (${v}->>'balance')::integer;
  m.points_lifetime := (${v}->>'lifetime')::integer;
  m.level := ${v}->>'level';`

const CHECKIN = `
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
  select * into m from members where id = p_member_id for update;
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

/** quanzi_receive of migrations/0030; `locked`: the daily_login award with the upserted row. */
const receive = (locked: boolean) => `
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
${
  locked
    ? `    -- the upsert above holds the member's row lock: m is the locked row
    v_award := quanzi_points_change_locked(m, p_appid, 'daily_login',
      'daily_login:' || m.id || ':' || p_day, null, p_now, p_day, p_week_start, null, true, null,
      p_levels);`
    : `    v_award := quanzi_points_change(p_appid, m.id, 'daily_login',
      'daily_login:' || m.id || ':' || p_day, null, p_now, p_day, p_week_start, null, true, null,
      p_levels);`
}
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

/** migrations/0007's definitions, for `down`. */
const POINTS_CHANGE_0007 = `
create or replace function quanzi_points_change(
  p_appid text, p_member_id bigint, p_rule text, p_key text, p_reference text,
  p_now timestamptz, p_day date, p_week_start date, p_delta integer, p_earned boolean,
  p_expires_at timestamptz, p_levels jsonb
) returns jsonb language plpgsql as $fn$
declare
  m members%rowtype;
  r point_rules%rowtype;
  v_delta integer;
  v_earned integer;
  v_level text;
  v_count integer;
begin
  select * into m from members where id = p_member_id for update;
  if not found then
    raise exception 'quanzi: member % does not exist', p_member_id;
  end if;
  if exists (select 1 from points_ledger where appid = p_appid and idempotency_key = p_key) then
    return jsonb_build_object('status', 'duplicate', 'balance', m.points_balance,
      'lifetime', m.points_lifetime, 'level', m.level);
  end if;
  if p_delta is null then
    select * into r from point_rules where rule = p_rule and appid in (p_appid, '*')
      order by appid = '*' limit 1;
    if not found or not r.enabled then
      return jsonb_build_object('status', 'disabled', 'balance', m.points_balance,
        'lifetime', m.points_lifetime, 'level', m.level);
    end if;
    if r.cap_count is not null and r.cap_period is not null then
      select count(*) into v_count from points_ledger
        where member_id = m.id and rule = p_rule
          and (r.cap_period <> 'day' or day = p_day)
          and (r.cap_period <> 'week' or day >= p_week_start);
      if v_count >= r.cap_count then
        return jsonb_build_object('status', 'capped', 'balance', m.points_balance,
          'lifetime', m.points_lifetime, 'level', m.level);
      end if;
    end if;
    select r.points * coalesce(max((l->>'multiplier')::integer), 1) into v_delta
      from jsonb_array_elements(p_levels) l where l->>'key' = m.level;
  else
    v_delta := p_delta;
    if v_delta = 0 then
      raise exception 'quanzi: delta must be non-zero';
    end if;
    if m.points_balance + v_delta < 0 then
      return jsonb_build_object('status', 'insufficient', 'balance', m.points_balance,
        'lifetime', m.points_lifetime, 'level', m.level);
    end if;
  end if;
  v_earned := case when p_earned then greatest(v_delta, 0) else 0 end;
  select l->>'key' into v_level from jsonb_array_elements(p_levels) l
    where (l->>'min')::integer <= m.points_lifetime + v_earned
    order by (l->>'min')::integer desc limit 1;
  -- The key's unique constraint decides, also when another member's change used it meanwhile.
  insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
      balance_after, earned, day, created_at, expires_at)
    values (p_appid, m.id, v_delta, p_rule, p_reference, p_key, m.points_balance + v_delta,
      v_earned, p_day, p_now, p_expires_at)
    on conflict (appid, idempotency_key) do nothing;
  if not found then
    return jsonb_build_object('status', 'duplicate', 'balance', m.points_balance,
      'lifetime', m.points_lifetime, 'level', m.level);
  end if;
  update members set points_balance = m.points_balance + v_delta,
      points_lifetime = m.points_lifetime + v_earned, level = coalesce(v_level, m.level)
    where id = m.id;
  return jsonb_build_object('status', 'applied', 'delta', v_delta,
    'balance', m.points_balance + v_delta, 'lifetime', m.points_lifetime + v_earned,
    'level', coalesce(v_level, m.level), 'previous_level', m.level);
end
$fn$`

const CHECKIN_0007 = `
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
  select * into m from members where id = p_member_id for update;
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
  v_award := quanzi_points_change(p_appid, m.id, 'checkin', 'checkin:' || m.id || ':' || p_day,
    null, p_now, p_day, p_week_start, null, true, null, p_levels);
  if v_award->>'status' = 'applied' then
    v_points := (v_award->>'delta')::integer;
  end if;
  v_bonus := coalesce((p_bonuses->>v_streak::text)::integer, 0);
  if v_bonus > 0 then
    v_extra := quanzi_points_change(p_appid, m.id, 'streak_bonus',
      'streak:' || m.id || ':' || p_day, 'streak ' || v_streak, p_now, p_day, p_week_start,
      v_bonus, true, null, p_levels);
    if v_extra->>'status' <> 'applied' then
      v_bonus := 0;
    end if;
  end if;
  insert into checkins (member_id, day, appid, streak, points, created_at)
    values (m.id, p_day, p_appid, v_streak, v_points + v_bonus, p_now);
  select * into m from members where id = m.id;
  return jsonb_build_object('status', 'checked_in', 'streak', v_streak, 'points', v_points,
    'bonus', v_bonus, 'balance', m.points_balance, 'lifetime', m.points_lifetime,
    'level', m.level, 'award', v_award, 'extra', v_extra,
    'invite_pending', exists (select 1 from invites
      where invitee_member_id = m.id and status = 'pending'));
end
$fn$`
