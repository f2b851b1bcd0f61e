/**
 * 退订 / TD and 订阅: stop and restart campaign pushes (service replies are not affected). An
 * opt-out records its time: the 退订 is no conversion (src/community/marketing-opt-out.ts).
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { marketingOptOut } from '../src/community/marketing-opt-out.js'
import { text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  const set = (optOut: boolean) => async (ctx: BotContext) => {
    await ctx.db
      .updateTable('members')
      .set(marketingOptOut(optOut, ctx.clock.now()))
      .where('id', '=', ctx.member.id)
      .execute()
    return text(ctx.t(optOut ? 'optout.done' : 'optin.done'))
  }
  router.command(
    { names: ['退订', 'TD', 'optout'], description: 'command.optout', group: 'settings' },
    set(true),
  )
  router.command(
    { names: ['订阅', 'optin'], description: 'command.optin', group: 'settings' },
    set(false),
  )
}
