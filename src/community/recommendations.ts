/**
 * Recommendations — "members like you also redeemed": item-item similarity over the account's own
 * data. An item is a reward (redeemed, not cancelled) or a shop product (in a paid order with
 * nothing refunded); a member "has" an item when they redeemed or bought it at least once.
 *
 * Nightly, {@link recomputeRecommendations} rebuilds, in one transaction of set-based statements:
 * - `item_popularity`: each item's distinct members, all time and in the last `recentDays`;
 * - `item_similarities`: for each item its top `topN` similar items by cosine similarity,
 *   `together / √(members(a) × members(b))`, over pairs with at least `minTogether` members in
 *   common (each member's `maxItemsPerMember` latest items are paired, bounding the self-join).
 *
 * {@link recommendRewards} then ranks, for a batch of members at once, the enabled rewards in stock
 * they have not redeemed: by the summed similarity to what they have, then — the fallback, for a
 * member with nothing similar — by recent and all-time popularity. The 兑换 reply shows them, and a
 * campaign template's `{{rec}}` names the first one ({@link templateText}).
 */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { TEMPLATE_EMOJI } from '../wechat/api/messages.js'

/** How the nightly rebuild counts. */
export interface RecommendationSettings {
  /** Similar items kept per item (default 10). */
  topN: number
  /** Members two items must share to count as similar (default 2). */
  minTogether: number
  /** A member's latest items paired (default 50): one member's cost is at most this squared. */
  maxItemsPerMember: number
  /** The popularity fallback's recent window, in days (default 30). */
  recentDays: number
}

export const DEFAULT_RECOMMENDATION_SETTINGS: RecommendationSettings = {
  topN: 10,
  minTogether: 2,
  maxItemsPerMember: 50,
  recentDays: 30,
}

/**
 * Every (account, kind, item, member, when) a member has: issued redemptions and paid orders
 * without any refund — the latest time per item. `members` narrows it to some member ids.
 */
function owned(members?: number[]) {
  const only = (column: string) =>
    members ? sql`and ${sql.ref(column)} = any(${members}::bigint[])` : sql``
  return sql`
    select appid, 'reward'::text as kind, reward_id as id, member_id, max(created_at) as at
    from redemptions where status = 'issued' ${only('member_id')}
    group by appid, reward_id, member_id
    union all
    select appid, 'product'::text, product_id, member_id, max(paid_at)
    from orders where status = 'paid' and refunded_fen = 0 ${only('member_id')}
    group by appid, product_id, member_id`
}

/**
 * Rebuilds item popularity and item-item similarities for every account (nightly). Idempotent: the
 * same data gives the same tables; concurrent calls are serialized by an advisory lock, and
 * readers see the previous tables until the rebuild commits.
 * @example await recomputeRecommendations(db, { now: clock.now() })
 */
export async function recomputeRecommendations(
  db: Kysely<Database>,
  o: { now: Date } & Partial<RecommendationSettings>,
): Promise<{ items: number; similarities: number }> {
  const s = { ...DEFAULT_RECOMMENDATION_SETTINGS, ...o }
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('quanzi:recompute-recommendations'))`.execute(
      trx,
    )
    await sql`delete from item_similarities`.execute(trx)
    await sql`delete from item_popularity`.execute(trx)
    const since = new Date(o.now.getTime() - s.recentDays * 86_400_000)
    const items = await sql`
      insert into item_popularity (appid, item_kind, item_id, members, recent_members, computed_at)
      select appid, kind, id, count(*), count(*) filter (where at >= ${since}), ${o.now}
      from (${owned()}) x
      group by appid, kind, id`.execute(trx)
    const similarities = await sql`
      with latest as (
        select member_id, kind, id,
          row_number() over (partition by member_id order by at desc, kind, id) as k
        from (${owned()}) x
      ), paired as (
        select member_id, kind, id from latest where k <= ${s.maxItemsPerMember}
      ), pairs as (
        select a.kind as a_kind, a.id as a_id, b.kind as b_kind, b.id as b_id, count(*) as together
        from paired a
        join paired b on b.member_id = a.member_id and (b.kind <> a.kind or b.id <> a.id)
        group by a.kind, a.id, b.kind, b.id
        having count(*) >= ${s.minTogether}
      ), scored as (
        select pa.appid, p.a_kind, p.a_id, p.b_kind, p.b_id, p.together,
          p.together / sqrt(pa.members::float8 * pb.members) as score
        from pairs p
        join item_popularity pa on pa.item_kind = p.a_kind and pa.item_id = p.a_id
        join item_popularity pb on pb.appid = pa.appid and pb.item_kind = p.b_kind
          and pb.item_id = p.b_id
      ), ranked as (
        select *, row_number() over (partition by appid, a_kind, a_id
          order by score desc, together desc, b_kind, b_id) as rank
        from scored
      )
      insert into item_similarities (appid, item_kind, item_id, similar_kind, similar_id, score,
        together, rank, computed_at)
      select appid, a_kind, a_id, b_kind, b_id, score, together, rank, ${o.now}
      from ranked where rank <= ${s.topN}`.execute(trx)
    return {
      items: Number(items.numAffectedRows ?? 0),
      similarities: Number(similarities.numAffectedRows ?? 0),
    }
  })
}

/** A reward recommended to a member, and why: similar to what they have, or popular. */
export interface RewardRecommendation {
  code: number
  name: string
  cost: number
  because: 'similar' | 'popular'
}

/**
 * The top `limit` rewards for each of `memberIds` (members of `appid`), in one statement: enabled,
 * in stock, not yet redeemed by the member; those similar to what the member has first (by summed
 * score), then popular ones (recent members, then all-time). A member with neither is absent.
 */
export async function recommendRewards(
  db: Kysely<Database>,
  q: { appid: string; memberIds: number[]; limit?: number },
): Promise<Map<number, RewardRecommendation[]>> {
  const out = new Map<number, RewardRecommendation[]>()
  if (q.memberIds.length === 0) return out
  const { rows } = await sql<RewardRecommendation & { member_id: number }>`
    with m as (
      select distinct unnest(${q.memberIds}::bigint[]) as member_id
    ), mine as (
      select member_id, kind, id from (${owned(q.memberIds)}) x where appid = ${q.appid}
    ), near as (
      select mine.member_id, s.similar_id as id, sum(s.score) as score
      from mine
      join item_similarities s on s.appid = ${q.appid} and s.item_kind = mine.kind
        and s.item_id = mine.id and s.similar_kind = 'reward'
      group by mine.member_id, s.similar_id
    ), eligible as (
      select r.id, r.code, r.name, r.cost, p.members, p.recent_members
      from rewards r
      left join item_popularity p on p.appid = r.appid and p.item_kind = 'reward'
        and p.item_id = r.id
      where r.appid = ${q.appid} and r.enabled and (r.stock is null or r.stock > 0)
    ), ranked as (
      select m.member_id, e.code, e.name, e.cost,
        case when s.id is null then 'popular' else 'similar' end as because,
        row_number() over (partition by m.member_id
          order by s.score desc nulls last, e.recent_members desc nulls last,
            e.members desc nulls last, e.code) as k
      from m
      cross join eligible e
      left join near s on s.member_id = m.member_id and s.id = e.id
      where (s.id is not null or e.members is not null)
        and not exists (select 1 from mine x
          where x.member_id = m.member_id and x.kind = 'reward' and x.id = e.id)
    )
    select member_id, code, name, cost, because from ranked where k <= ${q.limit ?? 3}
    order by member_id, k`.execute(db)
  for (const { member_id: id, ...r } of rows) {
    const key = Number(id)
    out.set(key, [...(out.get(key) ?? []), r])
  }
  return out
}

const EMOJI = new RegExp(TEMPLATE_EMOJI.source, 'gu')

/**
 * A name made fit for a template field: no emoji (nor the joiners and selectors they are made of),
 * no line breaks or other control characters (NEL included), at most `max` characters (a longer
 * one is cut and ends with …).
 * @example templateText('VIP 会员\n1 个月 🎁', 6) // 'VIP 会…'
 */
export function templateText(name: string, max: number): string {
  const clean = [
    ...name
      .replace(EMOJI, '')
      .replace(/[\s\p{Cc}]+/gu, ' ')
      .trim(),
  ]
  if (clean.length <= max) return clean.join('')
  return max <= 0 ? '' : `${clean.slice(0, max - 1).join('')}…`
}
