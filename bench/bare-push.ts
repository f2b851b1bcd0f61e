/**
 * The bare push (bench targets `bare` and `bare-hono`): the least work any server can do for the (b)
 * push with the parts issue 20 fixes — `node:http`, `node:crypto` and fast-xml-parser — and none of
 * quanzi's: no hardening scan, no validation pass, no dedupe, no router. It reads the body, checks
 * `msg_signature`, decrypts, parses the message with one fast-xml-parser pass, answers a fixed text
 * reply encrypted and signed. `bare` serves it from node:http with no framework: the ceiling of any
 * push implementation on this machine. `bare-hono` serves the same work from a Hono app on
 * @hono/node-server, the framework and adapter the product card fixes: the ceiling of any push
 * implementation on quanzi's stack.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { XMLParser } from 'fast-xml-parser'
import { Hono } from 'hono'

type Answer = { status: 200 | 400 | 401; xml?: string }

/** The push's whole work from its query and body to the answer (no I/O). */
function barePush(
  account: { appid: string; token: string; aesKey: string },
  reply: string,
): (query: (name: string) => string | undefined, body: string) => Answer {
  const key = Buffer.from(`${account.aesKey}=`, 'base64')
  const iv = key.subarray(0, 16)
  const appid = Buffer.from(account.appid)
  const parser = new XMLParser({
    ignoreAttributes: true,
    parseTagValue: false,
    trimValues: false,
    processEntities: false,
  })
  const sha1 = (parts: string[]) => createHash('sha1').update(parts.sort().join('')).digest('hex')
  return (query, body) => {
    const from = body.indexOf('<Encrypt><![CDATA[') + 18
    const encrypt = body.slice(from, body.indexOf(']]>', from))
    const timestamp = query('timestamp') ?? ''
    const nonce = query('nonce') ?? ''
    if (sha1([account.token, timestamp, nonce, encrypt]) !== query('msg_signature'))
      return { status: 401 }
    const decipher = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
    const plain = Buffer.concat([decipher.update(encrypt, 'base64'), decipher.final()])
    const length = plain.readUInt32BE(16)
    const message = parser.parse(plain.toString('utf8', 20, 20 + length)).xml
    if (
      plain.toString('utf8', 20 + length, plain.length - plain[plain.length - 1]!) !== account.appid
    )
      return { status: 400 }
    const now = Math.floor(Date.now() / 1000)
    const xml = `<xml><ToUserName><![CDATA[${message.FromUserName}]]></ToUserName><FromUserName><![CDATA[${message.ToUserName}]]></FromUserName><CreateTime>${now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${reply}]]></Content></xml>`
    const text = Buffer.from(xml)
    const size = 20 + text.length + appid.length
    const pad = 32 - (size % 32)
    const out = Buffer.alloc(size + pad, pad)
    randomBytes(16).copy(out)
    out.writeUInt32BE(text.length, 16)
    text.copy(out, 20)
    appid.copy(out, 20 + text.length)
    const cipher = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
    const sealed = Buffer.concat([cipher.update(out), cipher.final()]).toString('base64')
    const replyNonce = randomBytes(8).toString('hex')
    const ts = String(now)
    const signature = sha1([account.token, ts, replyNonce, sealed])
    return {
      status: 200,
      xml: `<xml><Encrypt><![CDATA[${sealed}]]></Encrypt><MsgSignature><![CDATA[${signature}]]></MsgSignature><TimeStamp>${ts}</TimeStamp><Nonce><![CDATA[${replyNonce}]]></Nonce></xml>`,
    }
  }
}

/** `bare`: the bare push on node:http, no framework. */
export function barePushServer(
  account: { appid: string; token: string; aesKey: string },
  reply: string,
): Server {
  const answer = barePush(account, reply)
  return createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const q = new URLSearchParams(req.url!.slice(req.url!.indexOf('?') + 1))
      const { status, xml } = answer(
        (name) => q.get(name) ?? undefined,
        Buffer.concat(chunks).toString(),
      )
      if (xml === undefined) res.writeHead(status).end()
      else res.writeHead(status, { 'content-type': 'application/xml' }).end(xml)
    })
  })
}

/** `bare-hono`: the same work as a Hono app (served by @hono/node-server, as quanzi is). */
export function barePushApp(
  account: { appid: string; token: string; aesKey: string },
  reply: string,
): Hono {
  const answer = barePush(account, reply)
  return new Hono().post('/wechat', async (c) => {
    const { status, xml } = answer((name) => c.req.query(name), await c.req.text())
    return xml === undefined
      ? c.body(null, status)
      : c.body(xml, status, { 'content-type': 'application/xml' })
  })
}
