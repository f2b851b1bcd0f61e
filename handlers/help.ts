/**
 * 帮助 / help: the commands the router has, one short line per group (每日 / 积分 / 邀请 / 活动 /
 * 设置), in the account's language; moderator commands only for moderators. `帮助 <指令>` explains
 * one command.
 */
import type { BotContext } from '../src/bot/context.js'
import { COMMAND_GROUPS, type CommandSpec, type Router } from '../src/bot/router.js'
import { isModerator } from '../src/community/moderation.js'
import { text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  // The full list depends only on the language, the moderator flag and the commands registered:
  // it is built once per language and flag for the commands as they are (a command registered
  // since makes a new list of them, and the lists are built again).
  let commandsListed: readonly CommandSpec[] | undefined
  let anyModeratorOnly = false
  const lists = new Map<string, string>()
  router.command(
    { names: ['帮助', 'help', '菜单', 'menu', '?', '？'], description: 'command.help' },
    async (ctx) => {
      const specs = router.commands()
      if (specs !== commandsListed) {
        commandsListed = specs
        anyModeratorOnly = specs.some((c) => c.scope === 'moderator')
        lists.clear()
      }
      const moderator = anyModeratorOnly && (await isModerator(ctx.db, ctx.channel))
      const visible = (c: CommandSpec) => moderator || c.scope !== 'moderator'
      const asked = ctx.args && router.find(ctx.args)
      if (asked && visible(asked)) {
        return text(
          ctx.t('help.line', {
            names: asked.names.filter((n) => !/^[?？]$/.test(n)).join(' / '),
            description: ctx.t(asked.description),
          }),
        )
      }
      const cacheKey = `${ctx.account.locale}:${moderator}`
      const cached = lists.get(cacheKey)
      if (cached !== undefined) return text(cached)
      const lines = [ctx.t('help.title')]
      for (const group of COMMAND_GROUPS) {
        const listed = specs.filter((c) => c.group === group && visible(c))
        if (listed.length === 0) continue
        lines.push(
          ctx.t('help.group', {
            group: ctx.t(`help.group.${group}`),
            commands: listed.map((c) => label(ctx, c)).join(' · '),
          }),
        )
      }
      lines.push(ctx.t('help.footer'))
      const list = lines.join('\n')
      // Not kept if a command was registered while this push waited (it is a list of the old ones).
      if (specs === commandsListed) lists.set(cacheKey, list)
      return text(list)
    },
  )
}

/** A command as the list shows it: its name in the account's language, and its argument. */
function label(ctx: BotContext, c: CommandSpec): string {
  // Chinese: the first name; English: the first all-lowercase English one (`optout`, not `TD`).
  const name =
    (ctx.account.locale === 'en' && c.names.find((n) => /^[a-z]+$/.test(n))) || c.names[0]!
  return c.args ? `${name} ${ctx.t(c.args)}` : name
}
