/** An operator excludes a member from campaigns, or includes them again (marketing opt-out). */
import * as v from 'valibot'
import { marketingOptOut } from '../../community/marketing-opt-out.js'
import type { Member } from '../../db/schema.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** The input of {@link setMarketingOptOut}: `optOut` true excludes, false includes. */
export const marketingOptOutInput = v.strictObject({ optOut: v.boolean() })
export type MarketingOptOutInput = v.InferOutput<typeof marketingOptOutInput>

/**
 * Sets the member's `marketing_opt_out` (campaigns and activity notices skip an opted-out member;
 * transactional notices still go) and, opting out, its time, as 退订 does (marketing-opt-out.ts).
 * A change is audited as `member.opt_out` / `member.opt_in`; setting what is already set changes
 * and audits nothing. Answers whether it changed.
 */
export async function setMarketingOptOut(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: MarketingOptOutInput & { appid: string; member: Pick<Member, 'id' | 'openid'> },
): Promise<{ changed: boolean }> {
  const { appid, member, optOut } = input
  const step = {
    appid,
    actor,
    action: optOut ? 'member.opt_out' : 'member.opt_in',
    target: member.openid,
    now: deps.clock.now(),
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const updated = await trx
      .updateTable('members')
      .set(marketingOptOut(optOut, step.now))
      .where('id', '=', member.id)
      .where('appid', '=', appid)
      .where('marketing_opt_out', '=', !optOut)
      .executeTakeFirst()
    const changed = Number(updated.numUpdatedRows) > 0
    return { result: { changed }, details: changed ? { optOut } : undefined }
  })
}
