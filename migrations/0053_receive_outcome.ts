import { type Kysely, sql } from 'kysely'

/**
 * A WeChat retry answered by its claim statement (issue #20). `quanzi_receive` with a replay stamp
 * (migration 0019's overload, the one the official-account webhook calls) now returns, for a push
 * claimed before, that claim's `status` and stored `reply` too: a retry of an answered push costs
 * the one statement it already ran, with no read after it and no polling. The dedupe insert found
 * the row committed (an uncommitted one makes the insert wait), and in plpgsql the next statement
 * sees it.
 *
 * For a push it claims, the same statement also says whether the sender is an official-account
 * moderator (`moderator`, scope `*`): 帮助 and the moderator commands no longer ask in a statement
 * of their own.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(overload(true)).execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(overload(false)).execute(db)
}

const overload = (outcome: boolean) => `
create or replace function quanzi_receive(
  p_appid text, p_dedupe_key text, p_openid text, p_msg_type text, p_event text,
  p_now timestamptz, p_active boolean, p_inbound boolean, p_subscribed boolean,
  p_subscribe boolean, p_unsubscribe boolean, p_follow boolean, p_scene text, p_event_key text,
  p_daily_login boolean, p_time_zone text, p_day date, p_week_start date, p_levels jsonb,
  p_door text, p_ts bigint, p_nonce text, p_digest text
) returns jsonb language plpgsql as $fn$
declare
  v jsonb;
begin
  if quanzi_claim_replay(p_door, p_appid, p_ts, p_nonce, p_digest, p_now) = 'conflict' then
    return jsonb_build_object('claimed', false, 'replayed', true);
  end if;
  v := quanzi_receive(p_appid, p_dedupe_key, p_openid, p_msg_type, p_event, p_now, p_active,
    p_inbound, p_subscribed, p_subscribe, p_unsubscribe, p_follow, p_scene, p_event_key,
    p_daily_login, p_time_zone, p_day, p_week_start, p_levels);${
      outcome
        ? `
  if not (v->>'claimed')::boolean then
    v := v || coalesce((select jsonb_build_object('status', status, 'reply', reply)
      from inbound_events where appid = p_appid and dedupe_key = p_dedupe_key), '{}');
  else
    v := v || jsonb_build_object('moderator', exists(select from moderators
      where channel = 'oa' and external_id = p_openid and scope = '*'));
  end if;`
        : ''
    }
  return v;
end
$fn$`
