/** 帮助 / help: lists the commands the router has, in the account's language. */
import type { Router } from '../src/bot/router.js'
import { text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  router.command(
    { names: ['帮助', 'help', '菜单', 'menu', '?', '？'], description: 'command.help' },
    (ctx) => {
      const lines = router.commands().map((c) =>
        ctx.t('help.line', {
          names: c.names.filter((n) => !/^[?？]$/.test(n)).join(' / '),
          description: ctx.t(c.description),
        }),
      )
      return text([ctx.t('help.title'), ...lines, '', ctx.t('help.footer')].join('\n'))
    },
  )
}
