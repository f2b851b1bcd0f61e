/**
 * 昵称 <名字> / name <name>: the name the ranking and 我的 show. Without a name, tells the current
 * one (or the tag shown instead). Refusals say why: too long, not one line, or a refused word.
 */
import type { BotContext } from '../src/bot/context.js'
import type { CommandSpec, Router } from '../src/bot/router.js'
import {
  DISPLAY_NAME_MAX,
  type DisplayNameCheck,
  maskedName,
  setDisplayName,
  validateDisplayName,
} from '../src/community/display-names.js'
import { text } from '../src/wechat/reply.js'

const SPEC: CommandSpec = {
  names: ['昵称', 'name', 'nickname', '改名'],
  description: 'command.nickname',
  group: 'settings',
  args: 'help.arg.name',
}

export function register(router: Router): void {
  router.command(SPEC, async (ctx) => {
    const typed = typedArgs(ctx)
    if (typed.trim() === '') {
      const name = ctx.member.display_name
      return text(
        name
          ? ctx.t('nickname.current', { name })
          : ctx.t('nickname.none', { masked: maskedName(ctx.member.openid, ctx.t) }),
      )
    }
    const check = validateDisplayName(typed)
    if (!check.ok) return text(nicknameRefusal(ctx, check))
    await setDisplayName(ctx.db, ctx.member.id, check.name)
    return text(ctx.t('nickname.done', { name: check.name }))
  })
}

/** Why a name was refused, in the member's language (also for `资料 昵称`). */
export function nicknameRefusal(
  ctx: BotContext,
  check: Exclude<DisplayNameCheck, { ok: true }>,
): string {
  switch (check.reason) {
    case 'too_long':
      return ctx.t('nickname.tooLong', { max: DISPLAY_NAME_MAX })
    case 'denied':
      return ctx.t('nickname.denied', { word: check.word })
    default:
      return ctx.t('nickname.control')
  }
}

const COMMAND = new RegExp(
  `^[/／]?(?:${[...SPEC.names].sort((a, b) => b.length - a.length).join('|')})`,
  'iu',
)

/**
 * The text after the command word exactly as typed: the router's `args` fold whitespace (a newline
 * becomes a space), and a name with a line break must be refused, not silently joined.
 */
function typedArgs(ctx: BotContext): string {
  const m = COMMAND.exec(ctx.text)
  return m ? ctx.text.slice(m[0].length) : ctx.args
}
