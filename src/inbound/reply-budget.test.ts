import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { sleep } from '../clock.js'
import { createLogger } from '../logger.js'
import { createPusher, nextMsgId } from '../sandbox/pusher.js'
import { text } from '../wechat/reply.js'

const bytes = (s: string) => new TextEncoder().encode(s).length
const marker = '…（内容太长，后面的没有显示）'
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
/** 3000+ bytes on one line: a CJK character and a skin-toned emoji (two surrogate pairs) in turn. */
const oneLine = `a${'签👍🏽'.repeat(300)}`
/** 3000+ bytes over many lines. */
const manyLines = Array.from({ length: 80 }, (_, i) => `${i + 1}. 第 ${i + 1} 项 🎁 奖品`).join(
  '\n',
)

/**
 * The reply deadline: long enough for a loaded machine's first push (a cold PGlite's took 1.3 s
 * under load, past the 200 ms this once was, and the passive reply was gone), short for the slow one.
 */
const DEADLINE_MS = 2500

forEachDatabase('the text byte budget of every reply', (get) => {
  let server: TestServer
  const logged: { level: string; msg: string; handler?: string; bytes?: number }[] = []
  const router = createRouter()
    .command({ names: ['超长', 'toolong'], description: 'command.help' }, () => text(oneLine))
    .command({ names: ['多行', 'manylines'], description: 'command.help' }, () => text(manyLines))
    .command({ names: ['慢长', 'slowlong'], description: 'command.help' }, async () => {
      // past the deadline below: the reply goes as a customer-service message
      await sleep(DEADLINE_MS + 500)
      return text(manyLines)
    })

  beforeAll(async () => {
    server = await startServer(get().db, {
      router,
      config: testConfig({ WECHAT_REPLY_DEADLINE_MS: String(DEADLINE_MS) }),
      logger: createLogger({ level: 'warn', write: (line) => logged.push(JSON.parse(line)) }),
    })
  })
  afterAll(() => server.close())

  const wx = () => createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })

  it('cuts a passive text reply over 2048 bytes safely and names the handler', async () => {
    expect(bytes(oneLine)).toBeGreaterThan(2048)
    const reply = (await wx().text('o_budget_1', '超长')).reply!.Content as string
    expect(bytes(reply)).toBeLessThanOrEqual(2048)
    expect(reply).not.toMatch(loneSurrogate)
    expect(reply.endsWith(`\n${marker}`)).toBe(true)
    const head = reply.slice(0, -marker.length - 1)
    // whole 签👍🏽 pairs only: the skin tone is never parted from its thumb
    expect(head).toMatch(/^a(?:签👍🏽)*签?$/u)
    expect(logged).toContainEqual(
      expect.objectContaining({ level: 'warn', handler: '超长', bytes: bytes(oneLine) }),
    )
  })

  it('cuts a many-line reply at a line', async () => {
    const reply = (await wx().text('o_budget_2', 'manylines')).reply!.Content as string
    expect(bytes(reply)).toBeLessThanOrEqual(2048)
    const lines = reply.split('\n')
    expect(lines.at(-1)).toBe(marker)
    expect(lines.slice(0, -1)).toEqual(manyLines.split('\n').slice(0, lines.length - 1))
    expect(logged).toContainEqual(expect.objectContaining({ handler: '多行' }))
  })

  it('keeps a late reply within the customer-service text budget too', async () => {
    const msgId = BigInt(nextMsgId())
    const first = await wx().push({
      FromUserName: 'o_budget_3',
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: 'text',
      Content: '慢长',
      MsgId: msgId,
    })
    expect(first.body).toBe('success')
    const db = get().db
    let queued: { payload: string } | undefined
    for (let i = 0; i < 200 && !queued; i++) {
      await sleep(50)
      queued = await db
        .selectFrom('push_outbox')
        .select('payload')
        .where('source', '=', `reply:m:${msgId}`)
        .executeTakeFirst()
    }
    const payload = JSON.parse(queued!.payload) as { msgtype: string; text: { content: string } }
    expect(payload.msgtype).toBe('text')
    expect(bytes(payload.text.content)).toBeLessThanOrEqual(2048)
    expect(payload.text.content.endsWith(`\n${marker}`)).toBe(true)
    expect(logged).toContainEqual(expect.objectContaining({ handler: '慢长' }))
  })
})
