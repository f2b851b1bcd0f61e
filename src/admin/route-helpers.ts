/**
 * What the operator API's route files share: the actor, the member a path names, refusals (an empty
 * PATCH among them).
 */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import { findMember } from '../community/members.js'
import type { Database } from '../db/schema.js'
import { accountParam, InputError } from '../routes/validate.js'
import type { Actor } from './actions/audited-action.js'

/** Who the operator API acts as in the audit log: the bearer token's holder. */
export const API_ACTOR = 'operator'

/** The actor of an API call: {@link API_ACTOR}, from the client's address. */
export const apiActor = (c: Context): Actor => ({
  name: API_ACTOR,
  clientAddress: c.var.clientAddress,
})

/** The `:appid` and `:openid` of a route, refused (404) unless both name something. */
export function memberParam(db: Kysely<Database>, appids: string[]) {
  const account = accountParam(appids)
  return async (c: Context) => {
    const appid = account(c)
    const member = await findMember(db, appid, c.req.param('openid')!)
    if (!member) throw new HTTPException(404, { message: 'unknown member' })
    return { appid, member }
  }
}

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
