/**
 * 资料 / details: the profile `complete_profile` asks for. `资料` shows it and prompts for the next
 * missing field; `资料 昵称 小明`, `资料 生日 5月`, `资料 城市 杭州` (English: `details name Tom`,
 * `details birthday May`, `details city Hangzhou`) fill one. The reply to the update that completes
 * the profile carries the points it earned (once).
 */
import type { BotContext } from '../src/bot/context.js'
import type { MessageKey } from '../src/bot/messages/zh-CN.js'
import type { CommandSpec, Router } from '../src/bot/router.js'
import { findRule } from '../src/community/points-ledger.js'
import {
  checkField,
  missingFields,
  type ProfileField,
  profileRewarded,
  updateProfile,
} from '../src/community/profile.js'
import type { Member } from '../src/db/schema.js'
import { text } from '../src/wechat/reply.js'
import { nicknameRefusal } from './nickname.js'

const SPEC: CommandSpec = {
  names: ['资料', 'details', '完善资料'],
  description: 'command.details',
  group: 'settings',
  args: 'help.arg.details',
}

/** The words that name a field, in either language. */
const FIELD_WORDS: Record<string, ProfileField> = {
  昵称: 'nickname',
  名字: 'nickname',
  name: 'nickname',
  nickname: 'nickname',
  生日: 'birthMonth',
  生日月份: 'birthMonth',
  月份: 'birthMonth',
  birthday: 'birthMonth',
  month: 'birthMonth',
  城市: 'city',
  所在城市: 'city',
  city: 'city',
}

const NEXT: Record<ProfileField, MessageKey> = {
  nickname: 'details.next.nickname',
  birthMonth: 'details.next.birthMonth',
  city: 'details.next.city',
}

export function register(router: Router): void {
  router.command(SPEC, async (ctx) => {
    const args = ctx.args.trim()
    if (args === '') return text(await summary(ctx, ctx.member))
    const [word = '', ...rest] = args.split(' ')
    const field = FIELD_WORDS[word.toLowerCase()]
    const value = rest.join(' ')
    if (!field || value === '') return text(ctx.t('details.usage'))
    const check = checkField(field, value)
    if (!check.ok) {
      if (check.field === 'nickname') return text(nicknameRefusal(ctx, check.check))
      return text(ctx.t(check.field === 'city' ? 'details.badCity' : 'details.badMonth'))
    }
    const u = await updateProfile(ctx.db, ctx.member.id, check.change, {
      now: ctx.clock.now(),
      timeZone: ctx.community.timeZone,
    })
    Object.assign(ctx.member, u.member)
    const head =
      u.awarded !== null
        ? ctx.t('details.awarded', { points: u.awarded, balance: u.member.points_balance })
        : ctx.t('details.saved')
    return text(`${head}\n${await summary(ctx, u.member)}`)
  })
}

/** The profile, then the next field to fill (and the reward), or that it is complete. */
async function summary(ctx: BotContext, m: Member): Promise<string> {
  const unset = ctx.t('details.unset')
  const lines = [
    ctx.t('details.summary', {
      nickname: m.display_name ?? unset,
      birthday: m.birth_month ? ctx.t('details.month', { month: m.birth_month }) : unset,
      city: m.city ?? unset,
    }),
  ]
  const missing = missingFields(m)
  if (missing.length === 0) {
    lines.push(ctx.t('details.complete'))
    return lines.join('\n')
  }
  lines.push(ctx.t(NEXT[missing[0]!]))
  const rule = await findRule(ctx.db, m.appid, 'complete_profile')
  if (rule?.enabled && !(await profileRewarded(ctx.db, m)))
    lines.push(ctx.t('details.reward', { points: rule.points }))
  return lines.join('\n')
}
