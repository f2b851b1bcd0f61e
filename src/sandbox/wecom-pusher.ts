/**
 * Pushers for WeCom callbacks, as WeCom sends them: the AI bot's encrypted JSON (receive id "")
 * and customer-contact XML events (receive id = corp id), signed with the Token. The AI bot pusher
 * also opens the encrypted stream reply. Used by tests and for trying the group channel locally.
 */
import { messageCipher, signature } from '../wechat/crypto.js'

const nonce = () => Math.random().toString(36).slice(2, 10)
const seconds = (ms: number) => String(Math.floor(ms / 1000))
const now = () => seconds(Date.now())

export function aibotPusher(o: {
  url: string
  token: string
  aesKey: string
  botId?: string
  /** The clock the callbacks are stamped with, in ms (default the real one): a server's test clock. */
  now?: () => number
}) {
  const cipher = messageCipher(o.aesKey)
  async function post(message: Record<string, unknown>, badSignature = false) {
    const encrypt = await cipher.encrypt(JSON.stringify(message), '')
    const q = { timestamp: o.now ? seconds(o.now()) : now(), nonce: nonce() }
    const sig = badSignature
      ? '0'.repeat(40)
      : await signature([o.token, q.timestamp, q.nonce, encrypt])
    const res = await fetch(`${o.url}?${new URLSearchParams({ msg_signature: sig, ...q })}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ encrypt }),
    })
    const text = await res.text()
    if (res.status !== 200 || !text) return { status: res.status, text, reply: null }
    const envelope = JSON.parse(text) as {
      encrypt: string
      msgsignature: string
      timestamp: number
      nonce: string
    }
    const expected = await signature([
      o.token,
      String(envelope.timestamp),
      envelope.nonce,
      envelope.encrypt,
    ])
    if (expected !== envelope.msgsignature || envelope.nonce !== q.nonce)
      throw new Error('the reply is not signed for this callback')
    const opened = await cipher.decrypt(envelope.encrypt)
    if (opened.receiveId !== '') throw new Error('the reply is not sealed for the AI bot')
    return {
      status: 200,
      text,
      reply: JSON.parse(opened.message) as {
        msgtype: string
        stream: { id: string; finish: boolean; content: string }
      },
    }
  }
  return {
    post,
    /** A text message that @-mentions the bot, in a group (or a single chat without `chatId`). */
    say(
      userid: string,
      content: string,
      x: { chatId?: string; msgid?: string; responseUrl?: string } = {},
    ) {
      return post({
        msgid: x.msgid ?? `m-${Date.now()}-${Math.random()}`,
        aibotid: o.botId ?? 'AIBOT1',
        ...(x.chatId ? { chatid: x.chatId, chattype: 'group' } : { chattype: 'single' }),
        from: { userid },
        ...(x.responseUrl ? { response_url: x.responseUrl } : {}),
        msgtype: 'text',
        text: { content: x.chatId ? `@圈子助手 ${content}` : content },
      })
    },
  }
}

export function contactPusher(o: { url: string; corpId: string; token: string; aesKey: string }) {
  const cipher = messageCipher(o.aesKey)
  return {
    /** Sends an event: `fields` are the XML elements after MsgType. */
    async event(fields: string) {
      return (await this.signed(fields)).send()
    },
    /**
     * Signs an event once (`fields` as for `event`) and gives a `send` that posts that very request
     * each time it is called — same timestamp, nonce, signature and body: WeCom's retry.
     */
    async signed(fields: string) {
      const ts = now()
      const encrypt = await cipher.encrypt(
        `<xml><ToUserName><![CDATA[${o.corpId}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>${ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>${fields}</xml>`,
        o.corpId,
      )
      const n = nonce()
      const sig = await signature([o.token, ts, n, encrypt])
      const url = `${o.url}?${new URLSearchParams({ msg_signature: sig, timestamp: ts, nonce: n })}`
      const body = `<xml><ToUserName><![CDATA[${o.corpId}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>`
      return {
        async send() {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'text/xml' },
            body,
          })
          return { status: res.status, body: await res.text() }
        },
      }
    },
    /** change_external_chat / update / add_member for a group. */
    membersAdded(chatId: string, version: string, userids: string[] | null) {
      return this.event(
        `<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[${chatId}]]></ChatId><ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>3</JoinScene>${
          userids
            ? `<MemChangeCnt>${userids.length}</MemChangeCnt><MemChangeList>${userids.map((u) => `<Item><![CDATA[${u}]]></Item>`).join('')}</MemChangeList>`
            : ''
        }<CurMemVer><![CDATA[${version}]]></CurMemVer>`,
      )
    },
  }
}
