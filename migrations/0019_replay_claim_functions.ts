import { type Kysely, sql } from 'kysely'

/**
 * The replay cache in the claim statements. Every door with a (timestamp, nonce) claims
 * (door, key, timestamp, nonce) in `replay_claims` with the SHA-256 of the body
 * (src/community/replay-claims.ts has the table's story; it is created by migration 0020 — plpgsql
 * resolves tables when a function first runs, so the order of the two files does not matter). The
 * same key with the same body again is WeChat's retry (it resends a request unchanged) and goes on
 * to the dedupe claim for its stored reply; another body is a replay of a captured signature.
 *
 *   quanzi_claim_replay   the check itself: 'new' | 'retry' | 'conflict'
 *   quanzi_receive        an overload of migrations/0007's with the replay claim first, so an
 *                         official-account push still costs one statement; `replayed` on conflict
 *   quanzi_claim_event    the WeCom doors' dedupe claim with the replay claim first:
 *                         'claimed' | 'duplicate' | 'replayed'
 *
 * In plpgsql each statement sees rows committed before it, so a racing request with the same key
 * waits on the insert and then reads the winner's digest.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
create function quanzi_claim_replay(
  p_door text, p_key text, p_ts bigint, p_nonce text, p_digest text, p_now timestamptz
) returns text language plpgsql as $fn$
declare
  v_digest text;
begin
  insert into replay_claims (door, key, ts, nonce, body_digest, created_at)
    values (p_door, p_key, p_ts, p_nonce, p_digest, p_now)
    on conflict (door, key, ts, nonce) do nothing;
  if found then
    return 'new';
  end if;
  select body_digest into v_digest from replay_claims
    where door = p_door and key = p_key and ts = p_ts and nonce = p_nonce;
  -- Gone (pruned in between) means the timestamp is stale: refuse rather than guess.
  return case when v_digest = p_digest then 'retry' else 'conflict' end;
end
$fn$`.execute(db)

  await sql`
create function quanzi_receive(
  p_appid text, p_dedupe_key text, p_openid text, p_msg_type text, p_event text,
  p_now timestamptz, p_active boolean, p_inbound boolean, p_subscribed boolean,
  p_subscribe boolean, p_unsubscribe boolean, p_follow boolean, p_scene text, p_event_key text,
  p_daily_login boolean, p_time_zone text, p_day date, p_week_start date, p_levels jsonb,
  p_door text, p_ts bigint, p_nonce text, p_digest text
) returns jsonb language plpgsql as $fn$
begin
  if quanzi_claim_replay(p_door, p_appid, p_ts, p_nonce, p_digest, p_now) = 'conflict' then
    return jsonb_build_object('claimed', false, 'replayed', true);
  end if;
  return quanzi_receive(p_appid, p_dedupe_key, p_openid, p_msg_type, p_event, p_now, p_active,
    p_inbound, p_subscribed, p_subscribe, p_unsubscribe, p_follow, p_scene, p_event_key,
    p_daily_login, p_time_zone, p_day, p_week_start, p_levels);
end
$fn$`.execute(db)

  await sql`
create function quanzi_claim_event(
  p_appid text, p_dedupe_key text, p_openid text, p_msg_type text, p_event text,
  p_now timestamptz, p_door text, p_ts bigint, p_nonce text, p_digest text
) returns text language plpgsql as $fn$
begin
  if quanzi_claim_replay(p_door, p_appid, p_ts, p_nonce, p_digest, p_now) = 'conflict' then
    return 'replayed';
  end if;
  insert into inbound_events (appid, dedupe_key, openid, msg_type, event, status, received_at)
    values (p_appid, p_dedupe_key, p_openid, p_msg_type, p_event, 'processing', p_now)
    on conflict (appid, dedupe_key) do nothing;
  return case when found then 'claimed' else 'duplicate' end;
end
$fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function quanzi_claim_event`.execute(db)
  await sql`drop function quanzi_receive(text, text, text, text, text, timestamptz, boolean, boolean, boolean, boolean, boolean, boolean, text, text, boolean, text, date, date, jsonb, text, bigint, text, text)`.execute(
    db,
  )
  await sql`drop function quanzi_claim_replay`.execute(db)
}
