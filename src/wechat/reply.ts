/**
 * Passive replies (§3 of the reference): builders, rendering to XML or JSON, and the encrypted
 * envelope (§4.4) for compatible and safe mode.
 */
import { buildXml, cdata, type PushFormat } from './codec.js'
import { type CryptoBackend, type MessageCipher, signature } from './crypto.js'

/** One article of a news reply (WeChat shows one since 2018-10-12). */
export interface Article {
  title: string
  description?: string
  picUrl?: string
  url?: string
}

/** What a handler can answer with. */
export type Reply =
  | { type: 'text'; content: string }
  | { type: 'image'; mediaId: string }
  | { type: 'news'; articles: Article[] }
  | { type: 'transfer_customer_service'; kfAccount?: string }

/** A text reply. */
export const text = (content: string): Reply => ({ type: 'text', content })
/** An image reply (the media must be uploaded first). */
export const image = (mediaId: string): Reply => ({ type: 'image', mediaId })
/** A news reply; WeChat delivers only the first article in most scenes. */
export const news = (...articles: Article[]): Reply => ({ type: 'news', articles })
/** Hands the conversation to the customer-service system (optionally a given agent). */
export const transferToCustomerService = (kfAccount?: string): Reply => ({
  type: 'transfer_customer_service',
  kfAccount,
})

/** The reply header: to the follower, from the account, at a time. */
export interface ReplyAddress {
  /** The follower's openid (the push's FromUserName). */
  to: string
  /** The account's gh_ id (the push's ToUserName). */
  from: string
  /** Unix seconds. */
  createTime: number
}

function fields(reply: Reply, a: ReplyAddress) {
  const head = {
    ToUserName: a.to,
    FromUserName: a.from,
    CreateTime: a.createTime,
    MsgType: reply.type,
  }
  // Object.assign onto the fresh header, not `{ ...head, Content }`: Node 20's V8 takes a slow
  // path for properties that follow a spread (bench/README.md, "Object spread").
  switch (reply.type) {
    case 'text':
      return Object.assign(head, { Content: reply.content })
    case 'image':
      return Object.assign(head, { Image: { MediaId: reply.mediaId } })
    case 'news': {
      if (reply.articles.length < 1 || reply.articles.length > 8) {
        throw new RangeError('a news reply carries 1 to 8 articles')
      }
      const Articles = reply.articles.map((x) => ({
        Title: x.title,
        Description: x.description ?? '',
        PicUrl: x.picUrl ?? '',
        Url: x.url ?? '',
      }))
      return Object.assign(head, { ArticleCount: Articles.length, Articles })
    }
    case 'transfer_customer_service':
      return reply.kfAccount
        ? Object.assign(head, { TransInfo: { KfAccount: reply.kfAccount } })
        : head
  }
}

/** Renders a reply in the push's format (WeChat XML, or JSON for JSON pushes). */
export function renderReply(
  reply: Reply,
  address: ReplyAddress,
  format: PushFormat = 'xml',
): string {
  // The reply nearly every push gets, in one template: the bytes buildXml writes for its fields
  // (codec.test.ts checks the two agree), without the fields object and the walk over its entries.
  if (reply.type === 'text' && format === 'xml')
    return `<xml><ToUserName>${cdata(address.to)}</ToUserName><FromUserName>${cdata(address.from)}</FromUserName><CreateTime>${address.createTime}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>${cdata(reply.content)}</Content></xml>`
  const f = fields(reply, address)
  return format === 'xml' ? buildXml(f) : JSON.stringify(f)
}

/** Seals a rendered reply: Encrypt, MsgSignature, TimeStamp, Nonce in Tencent's element order. */
export async function encryptReply(
  body: string,
  opts: {
    cipher: MessageCipher
    token: string
    receiveId: string
    timestamp: string
    nonce: string
    format: PushFormat
    crypto?: CryptoBackend
  },
): Promise<string> {
  const encrypt = await opts.cipher.encrypt(body, opts.receiveId)
  const msgSignature = await signature(
    [opts.token, opts.timestamp, opts.nonce, encrypt],
    opts.crypto,
  )
  if (opts.format === 'json') {
    return JSON.stringify({
      Encrypt: encrypt,
      MsgSignature: msgSignature,
      TimeStamp: Number(opts.timestamp),
      Nonce: opts.nonce,
    })
  }
  return `<xml>\n<Encrypt><![CDATA[${encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[${msgSignature}]]></MsgSignature>\n<TimeStamp>${opts.timestamp}</TimeStamp>\n<Nonce><![CDATA[${opts.nonce}]]></Nonce>\n</xml>`
}
