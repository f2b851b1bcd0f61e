/** An operator hands a member their invite QR for a campaign. */
import * as v from 'valibot'
import type { WechatAccess } from '../../bot/context.js'
import {
  type InviteQr,
  type InviteSettings,
  inviteQr,
  isCampaign,
  recordShare,
} from '../../community/invites.js'
import type { Member } from '../../db/schema.js'
import { qrImageUrl } from '../../wechat/api/qrcode.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** The input of {@link issueInviteQr} (`POST members/:openid/invite-qr`). */
export const issueInviteQrInput = v.strictObject({
  campaign: v.optional(v.pipe(v.string(), v.check(isCampaign, '1–40 letters, digits or -'))),
})
export type IssueInviteQrInput = v.InferOutput<typeof issueInviteQrInput>

/** The QR (`issued` when new, else the cached one) with its image URL, or `no_api`. */
export type IssueInviteQrResult =
  | { status: 'ok'; qr: InviteQr & { imageUrl: string } }
  | { status: 'no_api' }

/**
 * The member's invite QR for the campaign (cached, or new from WeChat). Handing it out is that
 * member sharing in the campaign (the invite report's sharers). Audited `invite.qr` after: no
 * transaction is held across the WeChat call.
 */
export async function issueInviteQr(
  deps: ActionDeps & { wechat: WechatAccess; invites: InviteSettings },
  actor: Actor,
  input: IssueInviteQrInput & { appid: string; member: Member },
): Promise<IssueInviteQrResult> {
  const { appid, member, ...body } = input
  const api = deps.wechat.api(appid)
  if (!api) return { status: 'no_api' }
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'invite.qr',
    target: member.openid,
    now,
  } satisfies AuditedStep
  return auditedAction<IssueInviteQrResult>(deps.db, { ...step, commit: 'after' }, async (db) => {
    const campaign = body.campaign
    const qr = await inviteQr(db, api, { member, campaign, now, settings: deps.invites })
    await recordShare(db, { member, campaign, now, timeZone: deps.timeZone })
    const imageUrl = qrImageUrl(deps.wechat.qrImageBase, qr.ticket)
    return { result: { status: 'ok', qr: { ...qr, imageUrl } }, details: body }
  })
}
