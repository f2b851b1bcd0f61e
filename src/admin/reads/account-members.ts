/**
 * The members an account's operators see: its followers (members under the account's appid) and
 * the members its shop serves under the mini program's appid — buyers who signed in to the mini
 * program without a unionid linking them to a follower (src/shop/mp-auth.ts), and those a 绑定
 * later linked to one, left behind with their history ({@link linkedFollower}). The shop belongs
 * to one account (`ShopSettings.appid`; one MP_APPID per deployment, which config.ts refuses to be
 * an account's appid), so another account's operators never reach its mini program's members.
 *
 * Openids are per appid: the same string may name a follower and a mini-program member. A member
 * named by openid alone is the follower, else the mini-program member; `miniProgram` names the
 * mini-program member only — the console's links to one carry it (`?mp=1`, memberHref), as may
 * operator API paths.
 */
import type { Kysely } from 'kysely'
import type { Database, Member } from '../../db/schema.js'
import type { ShopSettings } from '../../shop/catalog.js'

/** An account and the mini programs whose members its operators see. */
export interface MemberScope {
  appid: string
  mpAppids: string[]
}

/** The account's scope: its shop's mini program when the shop is this account's. */
export function memberScope(
  appid: string,
  shop: { settings: Pick<ShopSettings, 'appid' | 'mpAppid'> } | undefined,
): MemberScope {
  return { appid, mpAppids: shop && shop.settings.appid === appid ? [shop.settings.mpAppid] : [] }
}

/** Every appid a member of the scope may carry: the account's first. */
export const scopeAppids = (s: MemberScope) => [s.appid, ...s.mpAppids]

/** Whether the member is a mini-program member of the scope's account (not a follower). */
export const isMiniProgramMember = (s: MemberScope, m: Pick<Member, 'appid'>) => m.appid !== s.appid

/**
 * The scope's member with this openid: the follower, else the mini-program member; with
 * `miniProgram`, the mini-program member only. Undefined when none.
 */
export async function findScopeMember(
  db: Kysely<Database>,
  s: MemberScope,
  openid: string,
  o: { miniProgram?: boolean } = {},
): Promise<Member | undefined> {
  const appids = o.miniProgram ? s.mpAppids : scopeAppids(s)
  if (appids.length === 0) return undefined
  return db
    .selectFrom('members')
    .selectAll()
    .where('appid', 'in', appids)
    .where('openid', '=', openid)
    .orderBy((eb) => eb.case().when('appid', '=', s.appid).then(0).else(1).end())
    .orderBy('id')
    .limit(1)
    .executeTakeFirst()
}

/**
 * The follower a mini-program member's user was linked to by a 绑定 (mp-link.ts), or undefined:
 * the member left behind keeps only its history — orders, points and membership moved to the
 * follower, and the user acts as the follower from then on — so operators act there instead.
 */
export async function linkedFollower(
  db: Kysely<Database>,
  member: Pick<Member, 'id' | 'appid' | 'openid'>,
) {
  return db
    .selectFrom('mp_users as u')
    .innerJoin('members as f', 'f.id', 'u.member_id')
    .select(['f.appid', 'f.openid', 'f.display_name'])
    .where('u.appid', '=', member.appid)
    .where('u.openid', '=', member.openid)
    .where('u.member_id', '!=', member.id)
    .executeTakeFirst()
}
