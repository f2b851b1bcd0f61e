/**
 * Invites and multi-level referral rewards.
 *
 * Every member gets a short, stable invite code. `邀请` hands out a temporary `QR_STR_SCENE` code
 * whose scene is `inv_<code>` (or `inv_<code>_<campaign>`), cached per member and campaign and
 * re-issued only when less than a day of it is left — one qrcode/create call per member per period,
 * leased so that concurrent requests never issue twice. The cache keeps WeChat's ticket; the image
 * URL is built from the current image base whenever the code is shown.
 *
 * A follow through that code (or a group join carrying the code as its `state`) is *attributed*:
 * one invite per person, ever (`invites.invitee_key` is unique: unionid when known, else appid +
 * openid), never a self-invite, and only for people who were not members before (unfollowing and
 * following again pays nothing; nor does a follow by someone known under another row by unionid —
 * member-unionid.ts `knownBefore`; one found known only later is *dropped* at qualification: kept as
 * `dropped` with its reason and time, still attributed, never pending or qualified, paying no one
 * and no link of the tree). The invite *qualifies* on follow or — the default, against fake
 * accounts — on the invitee's first check-in; qualifying is one conditional UPDATE, so it happens
 * once, and pays the chain above in the same transaction: level 1 through the `friend_invite` rule
 * (its points × the inviter's level multiplier, capped 10 ever by default), levels 2… the configured
 * flat amounts (`invite_chain`) — only when level 1 was paid, so the cap holds for the chain too —
 * each with its own idempotency key, each inviter told through the
 * outbox.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Database, Member } from '../db/schema.js'
import type { ApiClient } from '../wechat/api/client.js'
import { createQrCode } from '../wechat/api/qrcode.js'
import { awardBadges } from './badges.js'
import { localDay } from './community-time.js'
import { knownBefore } from './member-unionid.js'
import { levelUpLine, notifyMember } from './notify.js'
import { changePoints, type LedgerOutcome } from './points-ledger.js'

type Db = Kysely<Database> | Transaction<Database>

/** Invite settings (from configuration). */
export interface InviteSettings {
  /** When an invite pays: on the invitee's follow, or on their first check-in (default). */
  rewardOn: 'follow' | 'checkin'
  /** Flat points for levels 2, 3, … (level 1 is the `friend_invite` rule). Its length + 1 = depth. */
  chainRewards: number[]
  /** How long an invite QR lives (1–30 days). */
  qrDays: number
}

export const DEFAULT_INVITE_SETTINGS: InviteSettings = {
  rewardOn: 'checkin',
  chainRewards: [30, 20, 10, 5],
  qrDays: 30,
}

const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ'
const CAMPAIGN = /^[A-Za-z0-9-]{1,40}$/
const SCENE = /^inv_([2-9A-HJ-NP-Z]{8})(?:_([A-Za-z0-9-]{1,40}))?$/
/**
 * Re-issue a cached QR when less than a week — or half its lifetime, if shorter — is left: a
 * member who prints or posts the code they are handed gets at least that long (a day's margin
 * handed out codes that died the next morning). At most about two `qrcode/create` a member a month.
 */
const reissueBeforeMs = (qrDays: number) => Math.min(7 * 86_400_000, (qrDays * 86_400_000) / 2)

/** True for a campaign tag that fits a QR scene. */
export const isCampaign = (s: string) => CAMPAIGN.test(s)

/** The QR scene for an invite code (and campaign). */
export function inviteScene(code: string, campaign = ''): string {
  if (campaign && !isCampaign(campaign)) throw new RangeError('campaign: 1–40 letters, digits or -')
  return campaign ? `inv_${code}_${campaign}` : `inv_${code}`
}

/** The invite code and campaign of a QR scene, or null when the scene is not an invite. */
export function parseInviteScene(scene: string | null): { code: string; campaign: string } | null {
  const m = scene ? SCENE.exec(scene) : null
  return m ? { code: m[1]!, campaign: m[2] ?? '' } : null
}

function randomCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8))
  return Array.from(bytes, (b) => ALPHABET[b % 32]).join('')
}

/** The member's invite code, created on first use (stable afterwards). */
export async function inviteCode(db: Db, member: Pick<Member, 'id' | 'appid'>, now: Date) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await db
      .selectFrom('invite_codes')
      .select('code')
      .where('member_id', '=', member.id)
      .executeTakeFirst()
    if (existing) return existing.code
    // Any conflict — this member raced us, or the random code is taken — and we look again.
    await db
      .insertInto('invite_codes')
      .values({ member_id: member.id, appid: member.appid, code: randomCode(), created_at: now })
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
  throw new Error('could not allocate an invite code')
}

/**
 * A member's invite QR. `issued` tells whether this call created it (one API call). Show it with
 * `qrImageUrl(qrImageBase, ticket)`, built when shown: the base may have moved since it was issued.
 */
export interface InviteQr {
  code: string
  campaign: string
  /** WeChat's ticket: the image is `showqrcode?ticket=…` under the current image base. */
  ticket: string
  /** What the code encodes (`http://weixin.qq.com/q/…`). */
  url: string
  expiresAt: Date
  issued: boolean
}

/** How long an issuer may take before another request takes over. */
const ISSUE_LEASE_MS = 15_000

/**
 * The member's invite QR for a campaign ('' = none): the cached one while more than a day of it is
 * left, else a new one from qrcode/create. Issuing is leased (`issuing_until`, one conditional
 * UPDATE), so concurrent requests make one API call: the others wait for the row to be filled in.
 * No transaction is held across the call (PGlite has one connection, and the call needs the token).
 */
export async function inviteQr(
  db: Kysely<Database>,
  api: ApiClient,
  o: {
    member: Pick<Member, 'id' | 'appid'>
    campaign?: string
    now: Date
    settings: InviteSettings
    /** How long to wait for another request's issuing (real time). Default 8 s. */
    waitMs?: number
  },
): Promise<InviteQr> {
  const campaign = o.campaign ?? ''
  const code = await inviteCode(db, o.member, o.now)
  await db
    .insertInto('invite_qr')
    .values({ member_id: o.member.id, campaign, expires_at: new Date(0) })
    .onConflict((oc) => oc.doNothing())
    .execute()
  const fresh = (row: { ticket: string | null; url: string | null; expires_at: Date }) =>
    row.ticket !== null &&
    row.url !== null &&
    row.expires_at.getTime() - o.now.getTime() > reissueBeforeMs(o.settings.qrDays)
  const giveUpAt = Date.now() + (o.waitMs ?? 8_000)
  for (let pause = 20; ; pause = Math.min(pause * 2, 400)) {
    const row = await db
      .selectFrom('invite_qr')
      .selectAll()
      .where('member_id', '=', o.member.id)
      .where('campaign', '=', campaign)
      .executeTakeFirstOrThrow()
    if (fresh(row)) {
      const { ticket, url, expires_at } = row
      return {
        code,
        campaign,
        ticket: ticket!,
        url: url!,
        expiresAt: expires_at,
        issued: false,
      }
    }
    const leased = await db
      .updateTable('invite_qr')
      .set({ issuing_until: new Date(o.now.getTime() + ISSUE_LEASE_MS) })
      .where('member_id', '=', o.member.id)
      .where('campaign', '=', campaign)
      .where((eb) => eb.or([eb('issuing_until', 'is', null), eb('issuing_until', '<=', o.now)]))
      .where('expires_at', '=', row.expires_at)
      .returning('member_id')
      .executeTakeFirst()
    if (leased) return issue()
    if (Date.now() >= giveUpAt) throw new Error('the invite QR is being issued by another request')
    await new Promise((resolve) => setTimeout(resolve, pause))
  }

  async function issue(): Promise<InviteQr> {
    const seconds = o.settings.qrDays * 86_400
    let qr: Awaited<ReturnType<typeof createQrCode>>
    try {
      qr = await createQrCode(api, {
        kind: 'temporary',
        scene: inviteScene(code, campaign),
        expireSeconds: seconds,
      })
    } catch (error) {
      // Free the lease so the next request tries at once.
      await db
        .updateTable('invite_qr')
        .set({ issuing_until: null })
        .where('member_id', '=', o.member.id)
        .where('campaign', '=', campaign)
        .execute()
      throw error
    }
    const expiresAt = new Date(o.now.getTime() + (qr.expireSeconds ?? seconds) * 1000)
    await db
      .updateTable('invite_qr')
      .set({
        ticket: qr.ticket,
        url: qr.url,
        expires_at: expiresAt,
        issued_at: o.now,
        issuing_until: null,
      })
      .where('member_id', '=', o.member.id)
      .where('campaign', '=', campaign)
      .execute()
    return { code, campaign, ticket: qr.ticket, url: qr.url, expiresAt, issued: true }
  }
}

/** Records that a member shared (asked for their QR) on a community day; once per day and campaign. */
export async function recordShare(
  db: Db,
  s: { member: Pick<Member, 'id' | 'appid'>; campaign?: string; now: Date; timeZone: string },
) {
  await db
    .insertInto('invite_shares')
    .values({
      member_id: s.member.id,
      appid: s.member.appid,
      day: localDay(s.now, s.timeZone),
      campaign: s.campaign ?? '',
    })
    .onConflict((oc) => oc.doNothing())
    .execute()
}

/** The person behind a member: unionid when known (shared across accounts), else appid + openid. */
export function inviteeKey(m: Pick<Member, 'appid' | 'openid' | 'unionid'>): string {
  return m.unionid ? `u:${m.unionid}` : `o:${m.appid}:${m.openid}`
}

/** What attributing did. */
export type Attribution =
  | {
      status: 'attributed'
      inviteId: number
      inviter: Member
      /** Set when the invite qualified at once (rewards on follow). */
      paid: PaidLevel[] | null
    }
  | { status: 'not_invite' | 'unknown_code' | 'self' | 'not_new' | 'already_invited' }

/** Everything qualifying needs besides the database. */
export interface InviteContext {
  now: Date
  timeZone: string
  settings: InviteSettings
  /** For the inviters' notices. */
  t: Translate
}

/**
 * Attributes a new member to the inviter whose code they came through: a follow through an invite
 * QR (`source: 'oa_qr'`, the code in the scene) or a group join whose `state` carries it
 * (`'group_join'`). Returns why nothing happened otherwise.
 */
export async function attributeInvite(
  db: Kysely<Database>,
  a: {
    invitee: Member
    /** An invite scene (`inv_<code>[_<campaign>]`) or a bare invite code. */
    scene: string | null
    /** A new follower, or a new group member: false for SCAN by a follower or a returning member. */
    isNew: boolean
    source: 'oa_qr' | 'group_join'
    /** The account the invite code belongs to (default the invitee's; a group join names it). */
    codeAppid?: string
    /**
     * The inviter's unionid when it is not stored but the invitee's is known (a group join: WeCom
     * names the joiner by unionid), learned before the self check so that a member joining through
     * their own QR is never their own invitee; null when it cannot be known (the account is not
     * bound). Throwing stops the attribution: nothing is attributed on an unknown.
     */
    inviterUnionid?: (inviter: Member) => Promise<string | null>
  } & InviteContext,
): Promise<Attribution> {
  const parsed = parseInviteScene(a.scene) ?? (a.scene ? parseInviteScene(`inv_${a.scene}`) : null)
  if (!parsed) return { status: 'not_invite' }
  const inviter = await db
    .selectFrom('invite_codes')
    .innerJoin('members', 'members.id', 'invite_codes.member_id')
    .selectAll('members')
    .where('invite_codes.appid', '=', a.codeAppid ?? a.invitee.appid)
    .where('invite_codes.code', '=', parsed.code)
    .executeTakeFirst()
  if (!inviter) return { status: 'unknown_code' }
  if (
    a.inviterUnionid &&
    a.invitee.unionid &&
    inviter.unionid === null &&
    inviter.id !== a.invitee.id
  )
    inviter.unionid = await a.inviterUnionid(inviter)
  const self =
    inviter.id === a.invitee.id ||
    (inviter.unionid !== null && inviter.unionid === a.invitee.unionid)
  if (self) return { status: 'self' }
  // Not new: a returning follower, or a person the community knew under another row (by unionid).
  if (!a.isNew || (await knownBefore(db, a.invitee))) return { status: 'not_new' }
  return db.transaction().execute(async (trx) => {
    const invite = await trx
      .insertInto('invites')
      .values({
        appid: a.codeAppid ?? a.invitee.appid,
        invitee_key: inviteeKey(a.invitee),
        invitee_member_id: a.invitee.id,
        inviter_member_id: inviter.id,
        campaign: parsed.campaign,
        source: a.source,
        scene: a.scene,
        status: 'pending',
        created_at: a.now,
      })
      .onConflict((oc) => oc.column('invitee_key').doNothing())
      .returning('id')
      .executeTakeFirst()
    if (!invite) return { status: 'already_invited' as const }
    const paid = a.settings.rewardOn === 'follow' ? await qualifyInvite(trx, a.invitee.id, a) : null
    return { status: 'attributed' as const, inviteId: invite.id, inviter, paid }
  })
}

/** One inviter paid for a qualified invite. */
export interface PaidLevel {
  level: number
  memberId: number
  openid: string
  outcome: LedgerOutcome
}

/**
 * Qualifies the member's pending invite, if any, and pays the chain above it — all in one
 * transaction (the caller's, or its own). Null when there was nothing pending (or another caller
 * qualified it first).
 */
export async function qualifyInvite(
  db: Db,
  inviteeMemberId: number,
  c: InviteContext,
): Promise<PaidLevel[] | null> {
  if (!db.isTransaction)
    return db.transaction().execute((trx) => qualifyInvite(trx, inviteeMemberId, c))
  // A unionid learnt after the follow (user/info failed then; the nightly backfill, a mini-program
  // login) may show a person known before under another row: not new, so their pending invite is
  // dropped, never qualified (the follow was attributed as if they were new) — kept, marked
  // `dropped` with the reason and when, so it stays attributed and audited but pays no one.
  const invitee = await db
    .selectFrom('members')
    .select(['id', 'unionid', 'first_seen_at'])
    .where('id', '=', inviteeMemberId)
    .executeTakeFirst()
  if (invitee && (await knownBefore(db, invitee))) {
    await db
      .updateTable('invites')
      .set({ status: 'dropped', drop_reason: 'known_before', dropped_at: c.now })
      .where('invitee_member_id', '=', inviteeMemberId)
      .where('status', '=', 'pending')
      .execute()
    return null
  }
  const invite = await db
    .updateTable('invites')
    .set({ status: 'qualified', qualified_at: c.now })
    .where('invitee_member_id', '=', inviteeMemberId)
    .where('status', '=', 'pending')
    .returning(['id', 'appid'])
    .executeTakeFirst()
  if (!invite) return null
  const depth = 1 + c.settings.chainRewards.length
  // Up the tree: who invited the invitee (level 1), who invited them (level 2), …
  const { rows: chain } = await sql<{ level: number; member_id: number; openid: string }>`
    with recursive chain(level, member_id, path) as (
      select 1, inviter_member_id, array[invitee_member_id, inviter_member_id]
        from invites where id = ${invite.id}
      union all
      select c.level + 1, up.inviter_member_id, c.path || up.inviter_member_id
        from chain c
        cross join lateral (
          select inviter_member_id from invites
          where invitee_member_id = c.member_id and status <> 'dropped' order by id limit 1
        ) up
        where c.level < ${depth} and not up.inviter_member_id = any(c.path)
    )
    select chain.level::int as level, chain.member_id, members.openid
      from chain join members on members.id = chain.member_id
      order by chain.level`.execute(db)
  const paid: PaidLevel[] = []
  for (const link of chain) {
    // The chain follows the direct reward: an invite whose level 1 was not paid (the inviter's
    // `friend_invite` cap reached, the rule disabled) pays no level above it either — else one
    // intermediate account would earn its inviter 30 an invite without limit.
    if (link.level > 1 && paid[0]?.level !== 1) break
    const amount = link.level === 1 ? null : (c.settings.chainRewards[link.level - 2] ?? 0)
    if (amount === 0) continue
    const outcome = await changePoints(
      db,
      {
        appid: invite.appid,
        memberId: link.member_id,
        rule: link.level === 1 ? 'friend_invite' : 'invite_chain',
        idempotencyKey: `invite:${invite.id}:${link.level}`,
        reference: `invite ${invite.id} level ${link.level}`,
        now: c.now,
        timeZone: c.timeZone,
      },
      amount,
    )
    if (outcome.status !== 'applied') continue
    paid.push({ level: link.level, memberId: link.member_id, openid: link.openid, outcome })
    const lines = [
      c.t(link.level === 1 ? 'invite.paid' : 'invite.paidChain', {
        level: link.level,
        points: outcome.delta,
        balance: outcome.balance,
      }),
    ]
    const up = levelUpLine(outcome, c.t)
    if (up) lines.push(up)
    await notifyMember(db, {
      appid: invite.appid,
      openid: link.openid,
      source: `invite:${invite.id}:${link.level}`,
      text: lines.join('\n'),
      now: c.now,
    })
  }
  // Badges for the direct inviter (first invite, 10 invites …), told through the outbox.
  if (chain[0]) await awardBadges(db, chain[0].member_id, { invites: null }, { ...c, outbox: true })
  return paid
}
