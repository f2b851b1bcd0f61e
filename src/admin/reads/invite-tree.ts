/**
 * A member's place in the invite tree: who invited them (up to {@link INVITE_TREE_DEPTH} levels
 * up) and whom they invited, level by level down to the same depth — every level counted, its
 * first {@link INVITE_LEVEL_SHOWN} listed.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../../db/schema.js'

/** How many levels up and down the tree is followed. */
export const INVITE_TREE_DEPTH = 5
/** How many members of one level down are listed (all are counted). */
export const INVITE_LEVEL_SHOWN = 50

/** A member in the tree. */
export interface TreeMember {
  openid: string
  displayName: string | null
  status: 'pending' | 'qualified'
  invitedAt: Date
}

/** One level below the member: how many, and the first of them by invitation time. */
export interface InviteLevel {
  depth: number
  count: number
  members: TreeMember[]
}

/**
 * The inviters, nearest first (each with the status of the invitation that brought the one
 * below), and the levels of invitees (depth 1 = invited by the member). The walk stops at the
 * depth, so even a cycle in bad data ends.
 */
export async function inviteTree(db: Kysely<Database>, appid: string, memberId: number) {
  const up: TreeMember[] = []
  let current = memberId
  for (let i = 0; i < INVITE_TREE_DEPTH; i++) {
    const row = await db
      .selectFrom('invites as i')
      .innerJoin('members as m', 'm.id', 'i.inviter_member_id')
      .select(['m.id', 'm.openid', 'm.display_name', 'i.status', 'i.created_at'])
      .where('i.appid', '=', appid)
      .where('i.invitee_member_id', '=', current)
      // a dropped invite (its invitee was known before: invites.ts) links no one
      .where('i.status', '<>', 'dropped')
      .$narrowType<{ status: 'pending' | 'qualified' }>()
      .executeTakeFirst()
    if (!row || row.id === memberId) break
    up.push({
      openid: row.openid,
      displayName: row.display_name,
      status: row.status,
      invitedAt: row.created_at,
    })
    current = row.id
  }
  const { rows } = await sql<{
    depth: number
    total: string | number
    openid: string
    display_name: string | null
    status: 'pending' | 'qualified'
    created_at: Date
  }>`
    with recursive tree (member_id, depth, status, created_at) as (
      select invitee_member_id, 1, status, created_at from invites
      where appid = ${appid} and inviter_member_id = ${memberId} and status <> 'dropped'
      union all
      select i.invitee_member_id, t.depth + 1, i.status, i.created_at
      from invites i join tree t on i.inviter_member_id = t.member_id
      where i.appid = ${appid} and i.status <> 'dropped' and t.depth < ${INVITE_TREE_DEPTH}
    ), ranked as (
      select t.*, count(*) over (partition by t.depth) as total,
        row_number() over (partition by t.depth order by t.created_at, t.member_id) as n
      from tree t
    )
    select r.depth, r.total, m.openid, m.display_name, r.status, r.created_at
    from ranked r join members m on m.id = r.member_id
    where r.n <= ${INVITE_LEVEL_SHOWN}
    order by r.depth, r.n`.execute(db)
  const down: InviteLevel[] = []
  for (const r of rows) {
    let level = down.find((l) => l.depth === r.depth)
    if (!level) {
      level = { depth: r.depth, count: Number(r.total), members: [] }
      down.push(level)
    }
    level.members.push({
      openid: r.openid,
      displayName: r.display_name,
      status: r.status,
      invitedAt: new Date(r.created_at),
    })
  }
  return { up, down }
}
