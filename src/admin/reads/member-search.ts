/**
 * Finding a member from what an operator has in hand: an openid, a display name, the member's
 * invite code, a redemption code the follower quotes, or an order number (out_trade_no) — among the
 * account's followers and its mini program's members (account-members.ts).
 */
import type { Kysely } from 'kysely'
import type { Database } from '../../db/schema.js'
import { isMiniProgramMember, type MemberScope, scopeAppids } from './account-members.js'

/** How a search result was found. */
export type MemberMatchKind = 'openid' | 'name' | 'invite_code' | 'redemption' | 'order'

/** One member found, with what matched (the code or order number, or the name). */
export interface MemberMatch {
  openid: string
  displayName: string | null
  subscribed: boolean
  /** A member of the account's mini program, not a follower (its page: memberHref with `mp`). */
  miniProgram: boolean
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
 * The scope's members that `query` names, exact matches first (openid, invite code, redemption
 * code, order number; codes compared case-insensitively), then display names containing it — at
 * most {@link MEMBER_SEARCH_MAX}, each member once (followers before mini-program members of the
 * same openid). An empty or over-long query finds nobody.
 */
export async function searchMembers(
  db: Kysely<Database>,
  scope: MemberScope,
  query: string,
): Promise<MemberMatch[]> {
  const q = query.trim()
  if (!q || q.length > MEMBER_QUERY_MAX) return []
  const code = q.toUpperCase()
  const appids = scopeAppids(scope)
  const member = db
    .selectFrom('members as m')
    .select(['m.id', 'm.appid', 'm.openid', 'm.display_name', 'm.subscribed'])
    .where('m.appid', 'in', appids)
    .orderBy((eb) => eb.case().when('m.appid', '=', scope.appid).then(0).else(1).end())
  const [byOpenid, byInvite, byRedemption, byOrder, byName] = await Promise.all([
    member.where('m.openid', '=', q).execute(),
    member
      .innerJoin('invite_codes as c', 'c.member_id', 'm.id')
      .select('c.code as matched')
      .where('c.appid', 'in', appids)
      .where('c.code', '=', code)
      .execute(),
    member
      .innerJoin('redemptions as r', 'r.member_id', 'm.id')
      .select('r.code as matched')
      .where('r.appid', 'in', appids)
      .where('r.code', '=', code)
      .execute(),
    member
      .innerJoin('orders as o', 'o.member_id', 'm.id')
      .select('o.out_trade_no as matched')
      .where('o.appid', 'in', appids)
      .where('o.out_trade_no', '=', q)
      .execute(),
    member
      .select('m.display_name as matched')
      .where('m.display_name', 'ilike', `%${likeLiteral(q)}%`)
      .orderBy('m.id')
      .limit(MEMBER_SEARCH_MAX)
      .execute(),
  ])
  // by member id: a follower and a mini-program member may share an openid
  const found = new Map<number, MemberMatch>()
  const add = (kind: MemberMatchKind, rows: typeof byOpenid & { matched?: string | null }[]) => {
    for (const r of rows)
      if (!found.has(r.id) && found.size < MEMBER_SEARCH_MAX)
        found.set(r.id, {
          openid: r.openid,
          displayName: r.display_name,
          subscribed: r.subscribed,
          miniProgram: isMiniProgramMember(scope, r),
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
