/**
 * Follows and parametric-QR scans: a welcome (or a welcome back, for someone who unfollowed
 * before), and — when the code was a member's invite QR — the invite attributed (new followers
 * only; rewards on follow or on the first check-in). An existing follower scanning a code is told
 * what the scan did: a campaign code is acknowledged, an invite code explains why it does not count.
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { type Attribution, attributeInvite, parseInviteScene } from '../src/community/invites.js'
import { learnUnionid } from '../src/community/member-unionid.js'
import { qrScan } from '../src/wechat/message.js'
import { text } from '../src/wechat/reply.js'

/** How long a plain follow's welcome waits for the follower's unionid (user/info). */
const UNIONID_WAIT_MS = 1000

export function register(router: Router): void {
  router.on(['subscribe', 'SCAN'], async (ctx) => {
    const scan = qrScan(ctx.message)
    if (!scan) return null
    if (parseInviteScene(scan.scene)) return invited(ctx, scan.scene!, scan.isNewFollower)
    if (!scan.isNewFollower) {
      return text(scan.scene ? ctx.t('scan.scene', { scene: scan.scene }) : ctx.t('scan.already'))
    }
    // Every follower's unionid, not only an invited one's: a follower who later joins a WeCom
    // group through someone's join QR is then found as the member they are, not counted as new.
    // The welcome does not need it: it waits a moment at most, the call goes on behind the reply
    // (best effort, as withUnionid is), so a slow WeChat API never pushes the welcome past the
    // passive reply's deadline.
    let wait: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      withUnionid(ctx),
      new Promise((resolve) => {
        wait = setTimeout(resolve, UNIONID_WAIT_MS)
      }),
    ])
    clearTimeout(wait)
    return text(welcome(ctx, scan.scene))
  })
}

/**
 * The greeting for a follow: "welcome back" for a member who unfollowed before (their points are
 * still there), else the first-time welcome, naming the QR scene when there was one.
 */
function welcome(ctx: BotContext, scene: string | null): string {
  const m = ctx.member
  if (!m.isNew && m.unsubscribed_at !== null)
    return ctx.t('welcome.back', { balance: m.points_balance })
  return scene ? ctx.t('welcome.scene', { scene }) : ctx.t('welcome')
}

/** What an existing follower scanning an invite code is told. */
function scanReply(ctx: BotContext, status: Attribution['status']): string {
  return ctx.t(status === 'self' ? 'scan.ownInvite' : 'scan.invite')
}

async function invited(ctx: BotContext, scene: string, isNewFollower: boolean) {
  const settings = ctx.community.invites
  const result = await attributeInvite(ctx.db, {
    invitee: await withUnionid(ctx),
    scene,
    // A follow that created the member: a returning follower or a SCAN is never a new invite.
    isNew: isNewFollower && ctx.member.isNew,
    source: 'oa_qr',
    now: ctx.clock.now(),
    timeZone: ctx.community.timeZone,
    settings,
    t: ctx.t,
  })
  ctx.logger.info('invite scan', { scene, result: result.status })
  if (!isNewFollower) return text(scanReply(ctx, result.status))
  if (result.status !== 'attributed') {
    const lines = [welcome(ctx, null)]
    // Someone who was a member before follows through a friend's code: say why it pays nothing.
    if (result.status === 'not_new') lines.push(ctx.t('invite.notCounted'))
    return text(lines.join('\n'))
  }
  const lines = [ctx.t('welcome.invited')]
  if (settings.rewardOn === 'checkin') lines.push(ctx.t('welcome.inviteCheckin'))
  return text(lines.join('\n'))
}

/**
 * The member with their unionid (user/info, one call while it is not stored; known only when the
 * account is bound to an Open Platform account), so that "invited once, ever" holds for the person
 * across accounts and WeCom groups. Best effort: a failed call is logged and the member goes on
 * without it (attributed by openid).
 */
export async function withUnionid(ctx: BotContext) {
  const api = ctx.wechat.api(ctx.account.appid)
  if (!api || ctx.member.unionid) return ctx.member
  try {
    return await learnUnionid(ctx.db, api, ctx.member)
  } catch (error) {
    ctx.logger.warn('user/info failed; attributing by openid', { error })
    return ctx.member
  }
}
