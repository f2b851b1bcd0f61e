/** An operator tags followers: at WeChat, and here (campaign audiences by tag). */
import * as v from 'valibot'
import type { WechatAccess } from '../../bot/context.js'
import { tagMembers as tagAtWechat } from '../../wechat/api/users.js'
import { membersByOpenid } from '../reads/members-by-openid.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** The input of {@link tagMembers} (`POST tags/:tagid/members`). */
export const tagMembersInput = v.strictObject({
  openids: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1), v.maxLength(1000)),
})
export type TagMembersInput = v.InferOutput<typeof tagMembersInput>

/** What tagging did: how many were tagged, or why none was. */
export type TagMembersResult =
  | { status: 'tagged'; tagged: number }
  /** The account has no WECHAT_SECRET, so no API. */
  | { status: 'no_api' }
  /** Some openids name no member of the account: nobody is tagged. */
  | { status: 'unknown'; openids: string[] }

/**
 * Tags the members at WeChat first — only what it accepted is recorded (and targeted by campaigns)
 * — then records the tags and audits `tags.add` in one transaction. A WeChat error is thrown.
 */
export async function tagMembers(
  deps: Pick<ActionDeps, 'db' | 'clock'> & { wechat: WechatAccess },
  actor: Actor,
  input: TagMembersInput & { appid: string; tagid: number },
): Promise<TagMembersResult> {
  const { appid, tagid, ...body } = input
  const api = deps.wechat.api(appid)
  if (!api) return { status: 'no_api' }
  const { members, unknown } = await membersByOpenid(deps.db, appid, body.openids)
  if (unknown.length) return { status: 'unknown', openids: unknown }
  await tagAtWechat(api, tagid, body.openids)
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'tags.add',
    target: String(tagid),
    now,
  } satisfies AuditedStep
  return auditedAction<TagMembersResult>(deps.db, step, async (trx) => {
    await trx
      .insertInto('member_tags')
      .values(members.map((m) => ({ member_id: m.id, tagid, tagged_at: now })))
      .onConflict((oc) => oc.columns(['member_id', 'tagid']).doNothing())
      .execute()
    return { result: { status: 'tagged', tagged: members.length }, details: body }
  })
}
