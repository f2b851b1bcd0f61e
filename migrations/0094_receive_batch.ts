import { type Kysely, sql } from 'kysely'
import { AWARDED, answer, awardOf } from './0093_checkin_batch.js'

/**
 * A batch of pushes claimed in set-based statements (issue #20 targets 3 and 4):
 * `quanzi_receive_batch`, what `quanzi_receive` (migrations/0088; with a replay stamp, the
 * overload of migrations/0053) does for each of its pushes, with the same answers and rows — but
 * five to eight statements for the batch (five without replay stamps) instead of eight to twelve
 * for each push. The app's batched claim
 * statement (src/community/members.ts `receiveAll`) calls it for batches of 8 pushes or more
 * (below, see the end of this comment); smaller ones still run `quanzi_receive` per push.
 * Measured in bench/README.md ("session 48").
 *
 * 1. The replay claims of the stamped pushes, in the batch's order; only when one was there
 *    already, a second statement (a new snapshot, as `quanzi_claim_replay`'s read after its insert)
 *    refuses each whose stored body digest is not its own (a replay).
 * 2. The dedupe claims of the pushes not refused, in order: those inserted are claimed.
 * 3. The claimed pushes' members: each found one read (its last activity, as before the push:
 *    the statement's snapshot, as the per-push read before its update) and updated in place, then
 *    the others inserted. A member another transaction inserted meanwhile (the insert conflicts)
 *    is updated by a statement after (it is not new, and had no activity before, as the per-push
 *    upsert's conflict path answers).
 * 4. One statement for the rest: the activity days, the follow facts, the daily login awards (the
 *    `daily_login` rule, its cap, the level multiplier; a refused award answers `duplicate` when its
 *    key was used, as `quanzi_points_change_locked` answers), the awarded members' figures, and
 *    each push's answer — a push claimed before answers with its stored status and reply when
 *    stamped (migration 0053), a claimed one with whether its sender is an OA moderator.
 *
 * Differences: locks are taken stage by stage (every replay claim, then every dedupe claim, then
 * every member's key — an advisory lock, `quanzi:member` and the member's (appid, openid) —, then
 * the rows of the members the snapshot saw, then the new ones) rather than push by push, each
 * stage in the batch's order. The members' keys make two such batches meet on their first shared
 * member also when they disagree on which members exist (one created meanwhile: without them,
 * each took the rows it saw first, and two batches deadlocked — reproduced in review). A set-based
 * batch can still cross a per-push one that holds a retry of one of its pushes (it takes every
 * dedupe claim before any member lock), or a per-push one that creates one of its members:
 * PostgreSQL aborts one side after `deadlock_timeout` and the app runs that batch's pushes one by
 * one (src/community/members.ts). The members' activity before the push is read once for
 * the batch, in the member statement's snapshot (after the members' keys, before any row-lock
 * wait): a member another transaction (a job, a per-push claim) made active while the batch
 * waited on its row answers the older `previous_active_at` (and its daily login `duplicate` rather than
 * none; the ledger key still pays it once) — the per-push calls read it push by push. Ledger and
 * follow-fact ids follow the batch's order within each statement.
 *
 * Planned as `quanzi_checkin_batch` is (hash and merge joins and sequential scans off: a batch's
 * rows are few and looked up by their keys; a generic plan made while the tables were small would
 * otherwise scan them whole — migrations/0093), and each statement's plan made once, generic
 * (`plan_cache_mode`): left to choose, PostgreSQL planned the batch's statements anew at every
 * call (their generic plans looked dearer than the custom ones), 17 % of the function's
 * instructions (callgrind: 1,671 k a push planned anew, 1,401 k with the plans kept;
 * `quanzi_checkin_batch`'s plans are kept already: the setting changes nothing there).
 *
 * A batch that names a member, a dedupe key or a replay stamp twice runs `quanzi_receive` for each
 * push instead, in order (the later push sees the earlier one's writes).
 *
 * The set-based statements cost a batch more to start than the per-push calls do, and the
 * function's settings cost each call: the app calls it for batches of 8 pushes or more only
 * (src/community/members.ts `SET_BASED_CLAIMS`; callgrind, instructions a push set-based ÷ per
 * push, new members and returning ones: 4 pushes 1.01 and 1.12, 8: 0.91 and 0.97, 16: 0.87 and
 * 0.89; on the same tables once vacuumed, with the member keys, 8: 0.91 and 1.10, 16: 0.87 and
 * 1.01 — new members gain, returning ones do not).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(BATCH).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function quanzi_receive_batch`.execute(db)
}

/** The member's columns a push sets, the push's values read from `u` (as migrations/0088). */
const SET = `
      last_active_at = case when u.active then u.now else t.last_active_at end,
      last_inbound_at = case when u.inbound then u.now else t.last_inbound_at end,
      subscribed = coalesce(u.subscribed, t.subscribed),
      subscribed_at = case when u.subscribe then u.now else t.subscribed_at end,
      unsubscribed_at = case when u.unsubscribe then u.now else t.unsubscribed_at end,
      subscribe_scene = case when u.follow then u.scene else t.subscribe_scene end,
      subscribe_event_key = case when u.follow then u.event_key else t.subscribe_event_key end`

/** The batch's pushes as rows `u` (with `ord`, their place in the batch). */
const PUSHES = `unnest(p_appid, p_dedupe_key, p_openid, p_msg_type, p_event, p_now, p_active,
        p_inbound, p_subscribed, p_subscribe, p_unsubscribe, p_follow, p_scene, p_event_key,
        p_daily_login, p_day, p_week_start, p_door, p_ts, p_nonce, p_digest)
      with ordinality u(appid, dedupe_key, openid, msg_type, event, now, active, inbound,
        subscribed, subscribe, unsubscribe, follow, scene, event_key, daily_login, day, week,
        door, ts, nonce, digest, ord)`

/** The date of a time in the community's time zone. */
const localDay = (at: string) => `(${at} at time zone p_time_zone)::date`

/** `quanzi_receive_batch`'s parameters: a per-push array each, then the batch's own two. */
export const PARAMS = `
  p_appid text[], p_dedupe_key text[], p_openid text[], p_msg_type text[], p_event text[],
  p_now timestamptz[], p_active boolean[], p_inbound boolean[], p_subscribed boolean[],
  p_subscribe boolean[], p_unsubscribe boolean[], p_follow boolean[], p_scene text[],
  p_event_key text[], p_daily_login boolean[], p_day date[], p_week_start date[],
  p_door text[], p_ts bigint[], p_nonce text[], p_digest text[], p_time_zone text, p_levels jsonb
`

/**
 * The batch's answers from `quanzi_receive` push by push, in order (with a replay stamp, its
 * overload): the function's fallback, and what the app's batched statement ran before it.
 */
export const PER_PUSH = `select u.ord, case when u.door is null
        then quanzi_receive(u.appid, u.dedupe_key, u.openid, u.msg_type, u.event, u.now, u.active,
          u.inbound, u.subscribed, u.subscribe, u.unsubscribe, u.follow, u.scene, u.event_key,
          u.daily_login, p_time_zone, u.day, u.week, p_levels)
        else quanzi_receive(u.appid, u.dedupe_key, u.openid, u.msg_type, u.event, u.now, u.active,
          u.inbound, u.subscribed, u.subscribe, u.unsubscribe, u.follow, u.scene, u.event_key,
          u.daily_login, p_time_zone, u.day, u.week, p_levels, u.door, u.ts, u.nonce, u.digest)
        end
      from ${PUSHES}
      order by u.ord`

/** The claimed pushes' members found, updated in place from `u`, returned as (ord, m). */
const UPDATED = `update members as t set${SET}
        from u where t.appid = u.appid and t.openid = u.openid
        returning u.ord, t as m`

const BATCH = `
create function quanzi_receive_batch(${PARAMS}) returns table (n bigint, outcome jsonb) language plpgsql
-- Row-by-row plans whatever the statistics (see migrations/0093), each made once
set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off
set plan_cache_mode = force_generic_plan as $fn$
declare
  v_stamped integer;
  v_rows bigint;
  v_replayed bigint[] := '{}';
  v_claimed bigint[];
  v_ords bigint[] := '{}';
  v_members members[] := '{}';
  v_new boolean[] := '{}';
  v_previous timestamptz[] := '{}';
  v_previous_inbound timestamptz[] := '{}';
begin
  if exists (select from unnest(p_appid, p_openid) x(appid, openid)
      group by x.appid, x.openid having count(*) > 1)
    or exists (select from unnest(p_appid, p_dedupe_key) x(appid, dedupe_key)
      group by x.appid, x.dedupe_key having count(*) > 1)
    or exists (select from unnest(p_door, p_appid, p_ts, p_nonce) x(door, appid, ts, nonce)
      where x.door is not null group by x.door, x.appid, x.ts, x.nonce having count(*) > 1) then
    return query ${PER_PUSH};
    return;
  end if;

  -- 1. The replay claims (quanzi_claim_replay's), in order; a stamp there already is a retry
  -- when its body digest is this push's, else a replay (also when the claim is gone).
  select count(*) into v_stamped from unnest(p_door) x(door) where x.door is not null;
  if v_stamped > 0 then
    insert into replay_claims (door, key, ts, nonce, body_digest, created_at)
      select u.door, u.appid, u.ts, u.nonce, u.digest, u.now from ${PUSHES}
      where u.door is not null order by u.ord
      on conflict (door, key, ts, nonce) do nothing;
    get diagnostics v_rows = row_count;
    if v_rows < v_stamped then
      select coalesce(array_agg(u.ord), '{}') into v_replayed from ${PUSHES}
        where u.door is not null and not exists (select from replay_claims r
          where r.door = u.door and r.key = u.appid and r.ts = u.ts and r.nonce = u.nonce
            and r.body_digest = u.digest);
    end if;
  end if;

  -- 2. The dedupe claims, in order: the pushes inserted are claimed.
  with claim as (
    insert into inbound_events (appid, dedupe_key, openid, msg_type, event, status, received_at)
      select u.appid, u.dedupe_key, u.openid, u.msg_type, u.event, 'processing', u.now
      from ${PUSHES}
      where u.ord <> all(v_replayed) order by u.ord
      on conflict (appid, dedupe_key) do nothing
      returning appid, dedupe_key
  )
  select coalesce(array_agg(x.ord), '{}') into v_claimed
    from unnest(p_appid, p_dedupe_key) with ordinality x(appid, dedupe_key, ord)
    join claim c on c.appid = x.appid and c.dedupe_key = x.dedupe_key;

  -- 3. The claimed pushes' members: found ones updated in place (their activity before read in
  -- the statement's snapshot), the others inserted.
  if cardinality(v_claimed) > 0 then
    -- First each member's key, in the batch's order (a transaction-scoped advisory lock): the
    -- row locks below take the members the snapshot saw before the new ones, and two batches
    -- that disagree on which of their shared members exist (one created meanwhile) would
    -- otherwise take them in different orders.
    perform pg_advisory_xact_lock(hashtext('quanzi:member'),
        hashtext(x.appid || ' ' || x.openid))
      from unnest(p_appid, p_openid) with ordinality x(appid, openid, ord)
      where x.ord = any(v_claimed) order by x.ord;
    with u as (
      select u.* from ${PUSHES} where u.ord = any(v_claimed) order by u.ord
    ),
    previous as (
      select u.ord, m.last_active_at, m.last_inbound_at
      from u join members m on m.appid = u.appid and m.openid = u.openid
    ),
    updated as (
      ${UPDATED}
    ),
    inserted as (
      insert into members as t (appid, openid, subscribed, subscribed_at, unsubscribed_at,
          subscribe_scene, subscribe_event_key, first_seen_at, last_active_at, last_inbound_at)
        select u.appid, u.openid, coalesce(u.subscribed, false),
          case when u.follow then u.now end, case when u.unsubscribe then u.now end,
          u.scene, u.event_key, u.now, case when u.active then u.now end,
          case when u.inbound then u.now end
        from u where not exists (select from updated w where w.ord = u.ord) order by u.ord
        on conflict (appid, openid) do nothing
        returning t as m
    ),
    received as (
      select w.ord, w.m, false as is_new from updated w
      union all
      select u.ord, i.m, true from inserted i join u on u.appid = (i.m).appid
        and u.openid = (i.m).openid
    )
    select coalesce(array_agg(r.ord order by r.ord), '{}'),
      coalesce(array_agg(r.m order by r.ord), '{}'), coalesce(array_agg(r.is_new order by r.ord), '{}'),
      coalesce(array_agg(p.last_active_at order by r.ord), '{}'),
      coalesce(array_agg(p.last_inbound_at order by r.ord), '{}')
    into v_ords, v_members, v_new, v_previous, v_previous_inbound
    from received r left join previous p on p.ord = r.ord;

    if cardinality(v_ords) < cardinality(v_claimed) then
      -- A member another transaction inserted after this statement's snapshot (the insert met
      -- it): updated now, not new, no activity before it (as the per-push upsert answers).
      with u as (
        select u.* from ${PUSHES}
        where u.ord = any(v_claimed) and u.ord <> all(v_ords) order by u.ord
      ),
      updated as (
        ${UPDATED}
      )
      select v_ords || array_agg(w.ord), v_members || array_agg(w.m),
        v_new || array_agg(false), v_previous || array_agg(null::timestamptz),
        v_previous_inbound || array_agg(null::timestamptz)
      into v_ords, v_members, v_new, v_previous, v_previous_inbound
      from updated w;
      if cardinality(v_ords) < cardinality(v_claimed) then
        raise exception 'quanzi: a member of the batch was deleted while it was received';
      end if;
    end if;
  end if;

  -- 4. The activity days, follow facts, daily login awards and every push's answer.
  return query
  with c as (
    select i.ord, i.m, i.is_new, i.previous, i.previous_inbound, (i.m).id as member_id,
      p_appid[i.ord] as appid, p_openid[i.ord] as openid, p_now[i.ord] as now,
      p_inbound[i.ord] as inbound, p_subscribe[i.ord] as subscribe,
      p_unsubscribe[i.ord] as unsubscribe, p_day[i.ord] as day, p_week_start[i.ord] as week,
      p_door[i.ord] as door,
      p_daily_login[i.ord] and (i.previous is null or ${localDay('i.previous')} <> p_day[i.ord])
        as login,
      (case when p_inbound[i.ord] then 1 else 0 end)
        | (case when p_event[i.ord] in ('CLICK', 'VIEW', 'view_miniprogram') then 4 else 0 end)
        | (case when p_inbound[i.ord] or p_event[i.ord] in ('CLICK', 'VIEW', 'view_miniprogram')
          then 0 else 32 end) as kinds
    from (select v_ords[k] as ord, v_members[k] as m, v_new[k] as is_new,
        v_previous[k] as previous, v_previous_inbound[k] as previous_inbound
      from generate_series(1, cardinality(v_ords)) k) i
  ),
  days as (
    insert into member_days as d (appid, day, member_id, kinds)
      select c.appid, c.day, c.member_id, c.kinds from c
      where c.login or (c.inbound and (c.previous_inbound is null
          or ${localDay('c.previous_inbound')} <> c.day))
        or (c.kinds & 4) <> 0
      order by c.ord
      on conflict (appid, day, member_id) do update set kinds = d.kinds | excluded.kinds
      where d.kinds & excluded.kinds <> excluded.kinds
  ),
  follows as (
    insert into follow_events (appid, member_id, at, day, kind, scene, source)
      select c.appid, c.member_id, c.now, c.day,
        case when c.subscribe then 'follow' else 'unfollow' end, (c.m).subscribe_scene,
        quanzi_follow_source((c.m).subscribe_scene)
      from c where c.subscribe or c.unsubscribe order by c.ord
  ),
  -- the daily login award: refused (disabled, capped; duplicate when its key was used), or its delta
  a as (
    select c.ord, c.appid, c.member_id, c.now, c.day, c.key,
      (c.m).points_balance::integer as m_balance, (c.m).points_lifetime as m_lifetime,
      (c.m).level as m_level,
      ${awardOf('daily_login', '(c.m).level')}
    from (select c.*, 'daily_login:' || c.member_id || ':' || c.day as key from c
        where c.login) c
      left join lateral (select * from point_rules
        where rule = 'daily_login' and appid in (c.appid, '*') order by appid = '*' limit 1) r
        on true
  ),
  award as (
    insert into points_ledger (appid, member_id, delta, rule, reference, idempotency_key,
        balance_after, earned, day, created_at, expires_at)
      select a.appid, a.member_id, a.delta, 'daily_login', null, a.key, a.m_balance + a.delta,
        greatest(a.delta, 0), a.day, a.now, null
      from a where a.refused is null order by a.ord
      on conflict (appid, idempotency_key) do nothing
      returning member_id
  ),
  -- the figures after the award (unchanged when refused)
  a1 as (
    select a.*, s.status, f.balance as a_balance, f.lifetime as a_lifetime, f.level as a_level
${AWARDED}
  ),
  written as (
    update members m set points_balance = a1.a_balance, points_lifetime = a1.a_lifetime,
        level = a1.a_level
      from a1 where m.id = a1.member_id and a1.status = 'applied'
  )
  select c.ord, jsonb_build_object('claimed', true,
      'member', to_jsonb(c.m) || case when a1.status = 'applied' then jsonb_build_object(
        'points_balance', a1.a_balance, 'points_lifetime', a1.a_lifetime, 'level', a1.a_level)
        else '{}' end,
      'is_new', c.is_new, 'previous_active_at', c.previous,
      'daily_login', case when a1.status is not null
        then ${answer('a1.status', 'a1.delta', 'a1.m', 'a1.a')} end)
      || case when c.door is null then '{}' else jsonb_build_object('moderator',
        exists (select from moderators where channel = 'oa' and external_id = c.openid
          and scope = '*')) end
    from c left join a1 on a1.ord = c.ord
  union all
  select u.ord, case when u.ord = any(v_replayed)
      then jsonb_build_object('claimed', false, 'replayed', true)
      else jsonb_build_object('claimed', false) || case when u.door is null then '{}'
        else coalesce((select jsonb_build_object('status', e.status, 'reply', e.reply)
          from inbound_events e where e.appid = u.appid and e.dedupe_key = u.dedupe_key), '{}')
        end end
    from unnest(p_appid, p_dedupe_key, p_door) with ordinality u(appid, dedupe_key, door, ord)
    where u.ord <> all(v_claimed)
  order by 1;
end
$fn$`
