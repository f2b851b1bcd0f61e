/**
 * Share links and the `content_share` rule: a member asks for their own link to an article (a
 * 公众号 article URL), an activity or a product, `/r/s/<code>`; when a *different* person opens it
 * in WeChat, the sharer earns the rule's points within its cap (default 5, 5 a day).
 *
 * Who opened it (the opener identity):
 *   - with SHARE_OAUTH on, their openid of the account (silent web OAuth, `snsapi_base`, in
 *     routes/links.ts), hashed: exact — a self-click is the sharer's own openid, and neither a
 *     cleared cookie nor another network makes a new person. Only a verified openid counts then:
 *     an open whose code did not exchange (refused, used, a snapshot page) is `unverified` — a
 *     click, never a counted open (`verifiedOnly`);
 *   - with it off (or for an account without a secret), the unverified mode: a hashed client
 *     fingerprint, SHA-256 of the client address and the user agent, and the first-party cookie
 *     (`qz_vid`) the browser sends. The cookie is set to the fingerprint on a first open, so a
 *     person keeps one identity when they come back with it from another network. Both are
 *     recorded and an open counts only when *neither* opened the link before: the cookie is chosen
 *     by the client, so it can recognise a repeat but never make a new opener on a network and
 *     browser that already opened the link — a forged cookie cannot do more than one browser can.
 * Only hashes are stored.
 *
 * What does not count: an open without `MicroMessenger` in the user agent (bots, previews, other
 * browsers); an unverified open under SHARE_OAUTH; a self-click — the sharer's openid, or without
 * one an open from the network address the sharer asked for the link from (kept as a hash per
 * sharer); and any open after the first by the same opener of the same link (the `share_opens` key
 * decides, also under concurrency), even when that first one was capped.
 *
 * A 绑定 moves a mini-program member's links to the follower they link to (src/shop/member-moves.ts):
 * later opens earn the follower, and a link merged into the follower's own for the same target
 * keeps its code (`share_link_aliases`) and its openers, who count once across both.
 */
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely'
import type { Database, Member, ShareLinksTable } from '../db/schema.js'
import { isHttpUrl } from '../http-url.js'
import { randomToken, sha256Hex } from '../wechat/crypto.js'
import { awardRule, keyShareMember, withMemberLocked } from './points-ledger.js'

/** What can be shared. */
export type ShareKind = ShareLinksTable['kind']

/** The cookie that carries an opener's identity between opens. */
export const VISITOR_COOKIE = 'qz_vid'

/** An opener identity as stored and as the cookie holds it: 32 lowercase hex characters. */
export const isOpenerId = (s: string) => /^[0-9a-f]{32}$/.test(s)

/** Whether a user agent is WeChat's in-app browser (bots and other browsers are not counted). */
export const isWechatBrowser = (userAgent: string) => /MicroMessenger\//i.test(userAgent)

/** A 公众号 article: an https URL on mp.weixin.qq.com, one line, no credentials. */
export function isArticleUrl(url: string): boolean {
  if (!isHttpUrl(url)) return false
  const u = new URL(url)
  return u.protocol === 'https:' && u.host === 'mp.weixin.qq.com' && !u.username && !u.password
}

/** The fingerprint identity of an opener with no cookie (see the module comment). */
export async function fingerprint(address: string, userAgent: string): Promise<string> {
  return (await sha256Hex(`opener\u0000${address}\u0000${userAgent}`)).slice(0, 32)
}

/** The identity of an opener known by their openid of the account (SHARE_OAUTH). */
export async function openidOpener(appid: string, openid: string): Promise<string> {
  return (await sha256Hex(`openid\u0000${appid}\u0000${openid}`)).slice(0, 32)
}

/** The sharer's network address as kept: hashed, per member. */
const sharerAddress = (memberId: number, address: string) =>
  sha256Hex(`sharer\u0000${memberId}\u0000${address}`)

/**
 * The link `code` opens: its own, or the one a 绑定 merged it into (`share_link_aliases`, written by
 * src/shop/member-moves.ts).
 */
const byCode = (code: string) => (eb: ExpressionBuilder<Database, 'share_links'>) =>
  eb.or([
    eb('share_links.code', '=', code),
    eb(
      'share_links.id',
      '=',
      eb.selectFrom('share_link_aliases').select('link_id').where('code', '=', code),
    ),
  ])

/** A request for a member's link. */
export interface ShareRequest {
  memberId: number
  kind: ShareKind
  /** The article's URL, the activity's key or the product's sku. */
  ref: string
  /** The sharer's client address (self-click guard). */
  address: string
  /** The account whose activities and products (its shop's) may be shared. */
  appid: string
  now: Date
}

/**
 * The member's link to `ref` (the same one when asked again; the sharer's address is refreshed),
 * or `not_found` for an unknown activity or product or a URL that is not a 公众号 article. Written
 * in one transaction (the caller's, or its own) with the member's row held first, so a 绑定
 * moving a mini program's link to the same target onto the member comes entirely after it (and
 * merges that link into this one) or entirely before it (this is the link it moved):
 * points-ledger.ts `keyShareMember`.
 */
export async function shareLink(
  db: Kysely<Database>,
  r: ShareRequest,
): Promise<{ status: 'ok'; code: string } | { status: 'not_found' }> {
  if (!db.isTransaction) return db.transaction().execute((trx) => shareLink(trx, r))
  if (r.kind === 'article' && !isArticleUrl(r.ref)) return { status: 'not_found' }
  if (r.kind === 'activity') {
    const found = await db
      .selectFrom('activities')
      .select('id')
      .where('appid', '=', r.appid)
      .where('key', '=', r.ref)
      .executeTakeFirst()
    if (!found) return { status: 'not_found' }
  }
  if (r.kind === 'product') {
    const found = await db
      .selectFrom('products')
      .select('id')
      .where('appid', '=', r.appid)
      .where('sku', '=', r.ref)
      .where('enabled', '=', true)
      .executeTakeFirst()
    if (!found) return { status: 'not_found' }
  }
  await keyShareMember(db, r.memberId)
  const row = await db
    .insertInto('share_links')
    .values({
      appid: r.appid,
      code: randomToken(16),
      member_id: r.memberId,
      kind: r.kind,
      ref: r.ref,
      target_url: r.kind === 'article' ? r.ref : null,
      sharer_address: await sharerAddress(r.memberId, r.address),
      created_at: r.now,
    })
    .onConflict((oc) =>
      oc.columns(['member_id', 'kind', 'ref']).doUpdateSet({
        sharer_address: (eb) => eb.ref('excluded.sharer_address'),
        address_salt: null,
      }),
    )
    .returning('code')
    .executeTakeFirstOrThrow()
  return { status: 'ok', code: row.code }
}

/** The account of link `code`, if there is such a link (read only: the open is not recorded). */
export async function shareLinkAccount(
  db: Kysely<Database>,
  code: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('share_links')
    .select('appid')
    .where(byCode(code))
    .executeTakeFirst()
  return row?.appid
}

/** An open of a share link. */
export interface ShareOpen {
  code: string
  /** The `qz_vid` cookie as sent, if any. */
  cookie?: string
  /** The opener's openid of the link's account, from the silent web OAuth (SHARE_OAUTH). */
  openid?: string
  /**
   * SHARE_OAUTH applies to this open: only an `openid` counts; without one the open is a click
   * with the outcome `unverified` (nothing recorded in `share_opens`, nothing earned).
   */
  verifiedOnly?: boolean
  address: string
  userAgent: string
  now: Date
  timeZone: string
}

/** Why an open earned nothing, or that it did (`awarded` with the points, `capped` by the rule). */
export type ShareOpenOutcome =
  | { status: 'awarded'; points: number }
  | { status: 'capped' | 'not_wechat' | 'unverified' | 'self' | 'repeat' }

/** What an open answers: where to go, the opener identity (for the cookie) and the outcome. */
export interface OpenedShare {
  link: Pick<ShareLinksTable, 'appid' | 'kind' | 'ref' | 'target_url'> & { id: number }
  opener: string
  outcome: ShareOpenOutcome
}

/**
 * Records an open of link `code` (undefined: no such link) and awards `content_share` to the
 * sharer when it counts: once per (link, opener), in one transaction with the sharer's row locked.
 */
export async function openShareLink(
  db: Kysely<Database>,
  o: ShareOpen,
): Promise<OpenedShare | undefined> {
  const click = () =>
    db
      .updateTable('share_links')
      .set((eb) => ({ clicks: eb('clicks', '+', 1) }))
      .where(byCode(o.code))
      .returning([
        'id',
        'appid',
        'member_id',
        'kind',
        'ref',
        'target_url',
        'sharer_address',
        'address_salt',
      ])
      .executeTakeFirst()
  // A 绑定 merging the link into the follower's deletes its row and points its code at the
  // follower's link (`share_link_aliases`) in one commit. An open that waited for the row finds
  // it gone, and the alias is newer than its statement: once more, a new statement sees the alias.
  const link = (await click()) ?? (await click())
  if (!link) return undefined
  const cookie = o.cookie && isOpenerId(o.cookie) ? o.cookie : undefined
  const seen = o.openid
    ? [await openidOpener(link.appid, o.openid)]
    : [...new Set([cookie, await fingerprint(o.address, o.userAgent)])].filter(
        (s) => s !== undefined,
      )
  // the identity kept (and put in the cookie): the openid's, else the cookie, else the fingerprint
  const opener = seen[0]!
  const opened = (outcome: ShareOpenOutcome): OpenedShare => ({ link, opener, outcome })
  if (!isWechatBrowser(o.userAgent)) return opened({ status: 'not_wechat' })
  if (o.verifiedOnly && !o.openid) return opened({ status: 'unverified' })
  // the address says "self" only when nothing better is known: a friend on the same Wi-Fi counts
  const salt = link.address_salt ?? link.member_id
  if (!o.openid && link.sharer_address === (await sharerAddress(salt, o.address)))
    return opened({ status: 'self' })
  const outcome = await withSharerLocked(
    db,
    o.code,
    link.member_id,
    async (trx, member, linkId) => {
      if (o.openid && o.openid === member.openid) return { status: 'self' } as const
      // every identity of this open must be new to the link (a repeat of any one is a repeat)
      const first = await trx
        .insertInto('share_opens')
        .values(
          seen.map((id) => ({ link_id: linkId, opener: id, outcome: 'capped', created_at: o.now })),
        )
        .onConflict((oc) => oc.columns(['link_id', 'opener']).doNothing())
        .returning('opener')
        .execute()
      if (first.length < seen.length) {
        // a repeat records none of its identities: Alice back from the office with her cookie must
        // not make the office's fingerprint seen, or a colleague with the same browser never counts
        if (first.length > 0)
          await trx
            .deleteFrom('share_opens')
            .where('link_id', '=', linkId)
            .where(
              'opener',
              'in',
              first.map((r) => r.opener),
            )
            .execute()
        return { status: 'repeat' } as const
      }
      const award = await awardRule(trx, member, {
        appid: member.appid,
        memberId: member.id,
        rule: 'content_share',
        idempotencyKey: `content_share:${linkId}:${opener}`,
        reference: `share:${linkId}`,
        now: o.now,
        timeZone: o.timeZone,
      })
      if (award.status !== 'applied') return { status: 'capped' } as const
      await trx
        .updateTable('share_opens')
        .set({ outcome: 'awarded' })
        .where('link_id', '=', linkId)
        .where('opener', 'in', seen)
        .execute()
      return { status: 'awarded', points: award.delta } as const
    },
  )
  return opened(outcome)
}

/** What a try under the sharer's lock gave: done, or the member the link was moved to. */
type Locked<T> = { done: T; moved?: undefined } | { moved: number }

/**
 * Runs `fn` with the sharer of link `code` locked, and the link's id as read under that lock: a
 * 绑定 moves a mini-program member's links to the follower — or into the follower's own link —
 * with both members locked (src/shop/member-moves.ts), so the sharer read before the lock may be
 * the member it left; then the follower is locked instead.
 */
async function withSharerLocked<T>(
  db: Kysely<Database>,
  code: string,
  sharer: number,
  fn: (trx: Transaction<Database>, member: Member, linkId: number) => Promise<T>,
): Promise<T> {
  for (let tries = 0; ; tries++) {
    const r = await withMemberLocked(db, sharer, async (trx, member): Promise<Locked<T>> => {
      const link = await trx
        .selectFrom('share_links')
        .select(['id', 'member_id'])
        .where(byCode(code))
        .executeTakeFirstOrThrow()
      if (link.member_id === member.id) return { done: await fn(trx, member, link.id) }
      return { moved: link.member_id }
    })
    if (r.moved === undefined) return r.done
    // a member's links move once (from a mini-program member to a follower): one retry suffices
    if (tries >= 2) throw new Error(`share link ${code}: its sharer keeps changing`)
    sharer = r.moved
  }
}

/** What a landing page shows for an activity or product link (no target URL). */
export async function shareLanding(
  db: Kysely<Database>,
  link: OpenedShare['link'],
): Promise<{ title: string; description: string } | undefined> {
  if (link.kind === 'activity') {
    const a = await db
      .selectFrom('activities')
      .select(['name', 'description'])
      .where('appid', '=', link.appid)
      .where('key', '=', link.ref)
      .executeTakeFirst()
    return a && { title: a.name, description: a.description }
  }
  if (link.kind === 'product') {
    const p = await db
      .selectFrom('products')
      .select(['name'])
      .where('appid', '=', link.appid)
      .where('sku', '=', link.ref)
      .executeTakeFirst()
    return p && { title: p.name, description: '' }
  }
  return undefined
}
