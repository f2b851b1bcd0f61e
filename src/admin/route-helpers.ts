/**
 * What the operator API's route files share: the actor, the member a path names, refusals (an empty
 * PATCH among them).
 */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { accountParam, InputError } from '../routes/validate.js'
import type { Shop } from '../shop/maintenance.js'
import type { Actor } from './actions/audited-action.js'
import {
  findScopeMember,
  isMiniProgramMember,
  linkedFollower,
  memberScope,
} from './reads/account-members.js'

/** Who the operator API acts as in the audit log: the bearer token's holder. */
export const API_ACTOR = 'operator'

/** The actor of an API call: {@link API_ACTOR}, from the client's address. */
export const apiActor = (c: Context): Actor => ({
  name: API_ACTOR,
  clientAddress: c.var.clientAddress,
})

/**
 * The `:appid` and `:openid` of a route, refused (404) unless both name something: a follower of
 * the account, else a member of its mini program (account-members.ts); `?mp=1` names the
 * mini-program member only. `miniProgram` tells the caller it is not a follower (no OA chat, no
 * WeChat tags).
 */
export function memberParam(o: { db: Kysely<Database>; appids: string[]; shop?: Shop }) {
  const account = accountParam(o.appids)
  return async (c: Context) => {
    const appid = account(c)
    const mp = c.req.query('mp')
    if (mp !== undefined && mp !== '1')
      throw new InputError([{ path: 'mp', message: 'must be 1 (the mini-program member)' }])
    const scope = memberScope(appid, o.shop)
    const member = await findScopeMember(o.db, scope, c.req.param('openid')!, {
      miniProgram: mp === '1',
    })
    if (!member) throw new HTTPException(404, { message: 'unknown member' })
    return { appid, member, miniProgram: isMiniProgramMember(scope, member) }
  }
}

/**
 * 409 for a mini-program member a 绑定 linked to a follower: their orders, points and membership
 * moved there, and a grant here would stay behind, out of the user's reach.
 */
export async function refuseLinked(db: Kysely<Database>, member: Member): Promise<void> {
  const follower = await linkedFollower(db, member)
  if (follower)
    throw new HTTPException(409, {
      message: `linked by 绑定 to the follower ${follower.openid} of ${follower.appid}: act on them`,
    })
}

/** 409: what only a follower of the account can have (an OA chat, WeChat tags, an invite QR). */
export const notFollower = () =>
  new HTTPException(409, {
    message: "a member of the account's mini program, not a follower: this needs a follower",
  })

/** 409: the account cannot call WeChat. */
export const noApi = () =>
  new HTTPException(409, { message: 'the account has no WECHAT_SECRET: no API' })

/** 404: openids that name no member of the account. */
export const unknownMembers = (openids: string[]) =>
  new HTTPException(404, { message: `unknown members: ${openids.join(', ')}` })

/**
 * A PATCH body, refused (400 `body: nothing to change`) when it names no field to change: an
 * empty update would otherwise reach the database as `UPDATE … SET` with nothing to set.
 * @example const b = someChange(await parseBody(c, updateRewardInput))
 */
export function someChange<T extends object>(body: T): T {
  if (!Object.values(body).some((x) => x !== undefined))
    throw new InputError([{ path: 'body', message: 'nothing to change' }])
  return body
}
