import { type Kysely, sql } from 'kysely'

/**
 * When an inbound claim was last made, taken back or renewed (`inbound_events.claimed_at`): the
 * lease clock of another channel's event (the bridge, WeCom callbacks). The attempt holding an
 * event renews it while it works; a `processing` claim not renewed for a lease belongs to a process
 * that died (SIGKILL, OOM, a deploy), and the sender's retry takes it back
 * (src/community/claim-lease.ts). `received_at` cannot be that clock: a claim taken back keeps the
 * event's first receipt on purpose. Null — rows claimed before this migration and official-account
 * pushes, which are never taken back — counts by `received_at`. Nullable without a default, so
 * adding it rewrites nothing.
 *
 * `quanzi_claim_event` (migrations/0019, the WeCom doors' claim) now sets it with the claim.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table inbound_events add column claimed_at timestamptz`.execute(db)
  await sql`
create or replace function quanzi_claim_event(
  p_appid text, p_dedupe_key text, p_openid text, p_msg_type text, p_event text,
  p_now timestamptz, p_door text, p_ts bigint, p_nonce text, p_digest text
) returns text language plpgsql as $fn$
begin
  if quanzi_claim_replay(p_door, p_appid, p_ts, p_nonce, p_digest, p_now) = 'conflict' then
    return 'replayed';
  end if;
  insert into inbound_events
      (appid, dedupe_key, openid, msg_type, event, status, received_at, claimed_at)
    values (p_appid, p_dedupe_key, p_openid, p_msg_type, p_event, 'processing', p_now, p_now)
    on conflict (appid, dedupe_key) do nothing;
  return case when found then 'claimed' else 'duplicate' end;
end
$fn$`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
create or replace function quanzi_claim_event(
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
  await sql`alter table inbound_events drop column claimed_at`.execute(db)
}
