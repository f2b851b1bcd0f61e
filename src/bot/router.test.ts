import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { botContext } from '../../test/bot-context.js'
import { parseXml } from '../wechat/codec.js'
import { toInboundMessage } from '../wechat/message.js'
import { text } from '../wechat/reply.js'
import type { BotContext } from './context.js'
import { Router } from './router.js'

function ctx(body: string, locale: 'zh-CN' | 'en' = 'zh-CN'): BotContext {
  const message = toInboundMessage(
    parseXml(
      `<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>${body}</xml>`,
    ),
  )
  return botContext(message, locale)
}
const textMsg = (s: string) =>
  ctx(`<MsgType>text</MsgType><Content><![CDATA[${s}]]></Content><MsgId>1</MsgId>`)

describe('Router', () => {
  const router = new Router()
    .command({ names: ['兑换', 'redeem'], description: 'command.help' }, (c) =>
      text(`redeem:${c.args}`),
    )
    .hears(/^(\d+)\+(\d+)$/, (c) => text(String(Number(c.match![1]) + Number(c.match![2]))))
    .on('CLICK', (c) => text(`click:${c.text}`))
    .otherwise(() => text('fallback'))

  const reply = async (c: BotContext) => router.route(c)

  it('matches commands by any alias, case-insensitively, with or without slash or space', async () => {
    expect(await reply(textMsg('兑换 3'))).toEqual(text('redeem:3'))
    expect(await reply(textMsg('REDEEM  7 x'))).toEqual(text('redeem:7 x'))
    expect(await reply(textMsg('/redeem'))).toEqual(text('redeem:'))
    expect(await reply(textMsg('兑换3'))).toEqual(text('redeem:3'))
    expect(await reply(textMsg('redeemer'))).toEqual(text('fallback'))
  })

  it('finds the command a word names whatever its case or slash, as lower-casing every word did', async () => {
    // Names with upper case, a slash of their own and Chinese; words made of them, changed.
    const names = ['签到', 'CheckIn', 'ok', '/x', '//y', '/／z', 'ΣΑΣ', 'İi', '？']
    const r = new Router()
    for (const name of names)
      r.command({ names: [name], description: 'command.help' }, () => text(name))
    const same = (a: string, b: string) =>
      (a.startsWith('/') || a.startsWith('／') ? a.slice(1) : a).toLowerCase() ===
      (b.startsWith('/') || b.startsWith('／') ? b.slice(1) : b).toLowerCase()
    const word = fc
      .tuple(
        fc.constantFrom(...names, 'x', 'y', '/y', 'z', '／z', 'checkin', 'σας', 'i̇i', 'X', '签'),
        fc.constantFrom('', '/', '／', '//'),
        fc.boolean(),
      )
      .map(([w, slash, upper]) => slash + (upper ? w.toUpperCase() : w))
    await fc.assert(
      fc.asyncProperty(word, async (w) => {
        const expected = names.find((n) => same(n, w))
        const got = await r.route(textMsg(w))
        expect(got).toEqual(expected === undefined ? null : text(expected))
      }),
      { numRuns: 300 },
    )
  })

  it('tries regexes after commands, events by name, and falls back only for messages', async () => {
    expect(await reply(textMsg('2+3'))).toEqual(text('5'))
    expect(
      await reply(ctx('<MsgType>event</MsgType><Event>CLICK</Event><EventKey>兑换</EventKey>')),
    ).toEqual(text('click:兑换'))
    expect(
      await reply(ctx('<MsgType>event</MsgType><Event>VIEW</Event><EventKey>http://x</EventKey>')),
    ).toBeNull()
    expect(await reply(ctx('<MsgType>hologram</MsgType>'))).toBeNull()
    expect(
      await reply(
        ctx('<MsgType>image</MsgType><PicUrl>p</PicUrl><MediaId>m</MediaId><MsgId>2</MsgId>'),
      ),
    ).toEqual(text('fallback'))
  })

  it('routes a menu CLICK to the command of the same name when no CLICK handler exists', async () => {
    const r = new Router().command({ names: ['帮助'], description: 'command.help' }, () =>
      text('help'),
    )
    expect(
      await r.route(ctx('<MsgType>event</MsgType><Event>CLICK</Event><EventKey>帮助</EventKey>')),
    ).toEqual(text('help'))
  })

  it('refuses a command name registered twice', () => {
    expect(() =>
      new Router()
        .command({ names: ['a'], description: 'command.help' }, () => null)
        .command({ names: ['A'], description: 'command.help' }, () => null),
    ).toThrow(/twice/)
  })

  it('finds a command by any alias, with the group and scope 帮助 lists it by', () => {
    const r = createRouter()
    expect(r.find('CHECKIN')).toMatchObject({ names: ['签到', 'checkin', '打卡'], group: 'daily' })
    expect(r.find('/name')).toMatchObject({ group: 'settings', args: 'help.arg.name' })
    expect(r.find('加分')).toMatchObject({ group: 'moderator', scope: 'moderator' })
    expect(r.find('nope')).toBeUndefined()
    for (const c of r.commands()) {
      if (c.scope === 'moderator') expect(c.group).toBe('moderator')
      if (c.group === 'moderator') expect(c.scope).toBe('moderator')
    }
  })

  it('reads voice recognition as text', async () => {
    const c = ctx(
      '<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format><Recognition>兑换。</Recognition><MsgId>9</MsgId>',
    )
    expect(await router.route(c)).toEqual(text('redeem:'))
  })
})
