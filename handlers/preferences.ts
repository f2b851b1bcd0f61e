/** 退订 / TD and 订阅: stop and restart campaign pushes (service replies are not affected). */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  const set = (optOut: boolean) => async (ctx: BotContext) => {
    await ctx.db
      .updateTable('members')
      .set({ marketing_opt_out: optOut })
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
