/**
 * Invite chains: who invited whom, followed down from an inviter nobody invited (a chain's root),
 * at most `CHAIN_LEVELS` levels deep — the longest chains of an account, and the tree under one
 * inviter (bounded in nodes). A member is visited once per path, so a cycle cannot loop.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../../db/schema.js'

/** How many invite levels are followed below a root (the invite reward pays five levels up). */
export const CHAIN_LEVELS = 5
/** At most this many members in one inviter's tree. */
export const TREE_LIMIT = 200

/** A chain root, how deep its invites go (1 … CHAIN_LEVELS) and how many members they reached. */
export interface InviteChain {
  openid: string
  name: string | null
  depth: number
  members: number
}

/**
 * The `limit` deepest chains of an account (then the widest): roots are inviters who were not
 * invited themselves.
 */
export async function longestInviteChains(
  db: Kysely<Database>,
  q: { appid: string; limit?: number },
): Promise<InviteChain[]> {
  const { rows } = await sql<InviteChain>`
    with recursive t(root, member, depth, path) as (
      select i.inviter_member_id, i.invitee_member_id, 1,
        array[i.inviter_member_id, i.invitee_member_id]
      from invites i
      -- a dropped invite (its invitee was known before: invites.ts) links no one
      where i.appid = ${q.appid} and i.status <> 'dropped' and not exists (select 1 from invites p
        where p.appid = ${q.appid} and p.invitee_member_id = i.inviter_member_id
          and p.status <> 'dropped')
      union all
      select t.root, i.invitee_member_id, t.depth + 1, t.path || i.invitee_member_id
      from t join invites i on i.inviter_member_id = t.member and i.appid = ${q.appid}
        and i.status <> 'dropped'
      where t.depth < ${CHAIN_LEVELS} and not i.invitee_member_id = any(t.path)
    )
    select m.openid, m.display_name as name, max(t.depth)::int as depth,
      count(distinct t.member)::int as members
    from t join members m on m.id = t.root
    group by m.openid, m.display_name
    order by depth desc, members desc, m.openid
    limit ${q.limit ?? 10}`.execute(db)
  return rows
}

/** A member in an inviter's tree and the members they invited. */
export interface InviteNode {
  openid: string
  name: string | null
  /** The invite that brought this member (null for the tree's root). */
  status: 'pending' | 'qualified' | null
  children: InviteNode[]
}

/**
 * The members `openid` invited, and theirs, down `CHAIN_LEVELS` levels, at most `TREE_LIMIT`
 * members (level by level, oldest invite first); null when the account has no such member.
 */
export async function inviteTree(
  db: Kysely<Database>,
  q: { appid: string; openid: string; limit?: number },
): Promise<{ root: InviteNode; members: number; truncated: boolean } | null> {
  const limit = q.limit ?? TREE_LIMIT
  const { rows } = await sql<{
    id: string
    parent: string | null
    status: 'pending' | 'qualified' | null
    openid: string
    name: string | null
  }>`
    with recursive t(id, parent, depth, path, status, at) as (
      select m.id, null::bigint, 0, array[m.id], null::text, null::timestamptz
      from members m where m.appid = ${q.appid} and m.openid = ${q.openid}
      union all
      select i.invitee_member_id, t.id, t.depth + 1, t.path || i.invitee_member_id, i.status,
        i.created_at
      from t join invites i on i.inviter_member_id = t.id and i.appid = ${q.appid}
        and i.status <> 'dropped'
      where t.depth < ${CHAIN_LEVELS} and not i.invitee_member_id = any(t.path)
    )
    select t.id::text as id, t.parent::text as parent, t.status, m.openid,
      m.display_name as name
    from t join members m on m.id = t.id
    order by t.depth, t.at nulls first, m.openid
    limit ${limit + 2}`.execute(db)
  const [first, ...rest] = rows
  if (!first) return null
  const nodes = new Map<string, InviteNode>()
  const root: InviteNode = { openid: first.openid, name: first.name, status: null, children: [] }
  nodes.set(first.id, root)
  const kept = rest.slice(0, limit)
  for (const r of kept) {
    const node: InviteNode = { openid: r.openid, name: r.name, status: r.status, children: [] }
    // A member reached by two paths keeps the first (shallowest) place.
    if (nodes.has(r.id)) continue
    nodes.get(r.parent ?? '')?.children.push(node)
    nodes.set(r.id, node)
  }
  return { root, members: nodes.size - 1, truncated: rest.length > limit }
}
