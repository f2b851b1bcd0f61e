/** 绑定 / bind (OA chat): a code that links the follower's WeCom account (sent from the group). */
import type { CommandSpec, Router } from '../src/bot/router.js'
import { issueBindingCode } from '../src/community/identities.js'
import { text } from '../src/wechat/reply.js'

const SPEC: CommandSpec = {
  names: ['绑定', 'bind'],
  description: 'command.bind',
  group: 'settings',
}

export function register(router: Router): void {
  router.command(SPEC, async (ctx) => {
    const { code, minutes } = await issueBindingCode(ctx.db, ctx.member.id, ctx.clock.now())
    return text(ctx.t('binding.code', { code, minutes }))
  })
}
