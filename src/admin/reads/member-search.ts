/**
 * Finding a member from what an operator has in hand: an openid, a display name, the member's
 * invite code, a redemption code the follower quotes, or an order number (out_trade_no).
 */
import type { Kysely } from 'kysely'
import type { Database } from '../../db/schema.js'

/** How a search result was found. */
export type MemberMatchKind = 'openid' | 'name' | 'invite_code' | 'redemption' | 'order'

/** One member found, with what matched (the code or order number, or the name). */
export interface MemberMatch {
  openid: string
  displayName: string | null
  subscribed: boolean
  matchedBy: MemberMatchKind
  matched: string
}

/** The most results a search answers. */
export const MEMBER_SEARCH_MAX = 20

/** The longest query accepted (longer text names nothing). */
export const MEMBER_QUERY_MAX = 64

/** `%` and `_` taken literally inside a LIKE pattern (escape character `\`). */
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/**
 * The account's members that `query` names, exact matches first (openid, invite code, redemption
 * code, order number; codes compared case-insensitively), then display names containing it — at
 * most {@link MEMBER_SEARCH_MAX}, each member once. An empty or over-long query finds nobody.
 */
export async function searchMembers(
  db: Kysely<Database>,
  appid: string,
  query: string,
): Promise<MemberMatch[]> {
  const q = query.trim()
  if (!q || q.length > MEMBER_QUERY_MAX) return []
  const code = q.toUpperCase()
  const member = db
    .selectFrom('members as m')
    .select(['m.openid', 'm.display_name', 'm.subscribed'])
    .where('m.appid', '=', appid)
  const [byOpenid, byInvite, byRedemption, byOrder, byName] = await Promise.all([
    member.where('m.openid', '=', q).execute(),
    member
      .innerJoin('invite_codes as c', 'c.member_id', 'm.id')
      .select('c.code as matched')
      .where('c.appid', '=', appid)
      .where('c.code', '=', code)
      .execute(),
    member
      .innerJoin('redemptions as r', 'r.member_id', 'm.id')
      .select('r.code as matched')
      .where('r.appid', '=', appid)
      .where('r.code', '=', code)
      .execute(),
    member
      .innerJoin('orders as o', 'o.member_id', 'm.id')
      .select('o.out_trade_no as matched')
      .where('o.appid', '=', appid)
      .where('o.out_trade_no', '=', q)
      .execute(),
    member
      .select('m.display_name as matched')
      .where('m.display_name', 'ilike', `%${likeLiteral(q)}%`)
      .orderBy('m.id')
      .limit(MEMBER_SEARCH_MAX)
      .execute(),
  ])
  const found = new Map<string, MemberMatch>()
  const add = (kind: MemberMatchKind, rows: typeof byOpenid & { matched?: string | null }[]) => {
    for (const r of rows)
      if (!found.has(r.openid) && found.size < MEMBER_SEARCH_MAX)
        found.set(r.openid, {
          openid: r.openid,
          displayName: r.display_name,
          subscribed: r.subscribed,
          matchedBy: kind,
          matched: r.matched ?? r.openid,
        })
  }
  add('openid', byOpenid)
  add('redemption', byRedemption)
  add('order', byOrder)
  add('invite_code', byInvite)
  add('name', byName)
  return [...found.values()]
}
