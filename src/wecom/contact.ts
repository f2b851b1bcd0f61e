/**
 * WeCom customer contact (客户联系): the XML callback (../shared/protocol/wecom-groups.md §3) — the OA
 * envelope with receive id = corp id, an encrypted echostr on URL verification — and the customer-
 * group APIs the join attribution uses. Web Crypto only.
 */

import type { ApiClient } from '../wechat/api/client.js'
import { type PushFields, parseXml } from '../wechat/codec.js'
import {
  type CryptoBackend,
  messageCipher,
  signature,
  timingSafeEqual,
  webCrypto,
} from '../wechat/crypto.js'
import { WecomCallbackError } from './callback-error.js'

export interface ContactCredentials {
  corpId: string
  token: string
  aesKey: string
}

type Query = { msg_signature?: string; timestamp?: string; nonce?: string; echostr?: string }

export function contactCodec(c: ContactCredentials, backend: CryptoBackend = webCrypto) {
  const cipher = messageCipher(c.aesKey, backend)
  async function open(q: Query, encrypt: string): Promise<string> {
    if (!q.msg_signature || !q.timestamp || !q.nonce)
      throw new WecomCallbackError(400, 'msg_signature, timestamp and nonce are required')
    const expected = await signature([c.token, q.timestamp, q.nonce, encrypt], backend)
    if (!timingSafeEqual(expected, q.msg_signature))
      throw new WecomCallbackError(401, 'msg_signature does not match')
    let opened: Awaited<ReturnType<typeof cipher.decrypt>>
    try {
      opened = await cipher.decrypt(encrypt)
    } catch {
      throw new WecomCallbackError(400, 'Encrypt does not decrypt with this EncodingAESKey')
    }
    if (opened.receiveId !== c.corpId)
      throw new WecomCallbackError(400, 'receive id is not our corp id')
    return opened.message
  }
  return {
    /** GET: the decrypted echostr. */
    verifyUrl(q: Query) {
      if (!q.echostr) throw new WecomCallbackError(400, 'echostr is required')
      return open(q, q.echostr)
    },
    /** POST: the decrypted event's fields. */
    async open(q: Query, body: string): Promise<PushFields> {
      let envelope: PushFields
      try {
        envelope = parseXml(body)
      } catch {
        throw new WecomCallbackError(400, 'body is not the callback XML')
      }
      if (typeof envelope.Encrypt !== 'string') throw new WecomCallbackError(400, 'no Encrypt')
      try {
        return parseXml(await open(q, envelope.Encrypt))
      } catch (error) {
        if (error instanceof WecomCallbackError) throw error
        throw new WecomCallbackError(400, 'the decrypted event is not XML')
      }
    },
  }
}

/** A customer group's member as groupchat/get lists it. */
export interface GroupChatMember {
  userid: string
  /** 1 corp member, 2 external (WeChat user). */
  type: number
  unionid?: string
  join_time: number
  join_scene: number
  invitor?: { userid: string }
  /** The state of the join way the member came through. */
  state?: string
}

export async function groupChatGet(api: ApiClient, chatId: string) {
  const res = await api.call({
    method: 'groupchat.get',
    path: '/cgi-bin/externalcontact/groupchat/get',
    http: 'POST',
    body: { chat_id: chatId, need_name: 1 },
    auth: true,
  })
  return res.group_chat as {
    chat_id: string
    name: string
    owner: string
    admin_list: { userid: string }[]
    member_list: GroupChatMember[]
  }
}

/** A QR join way into up to five groups, carrying `state` (≤ 30 characters) into groupchat/get. */
export async function addJoinWay(
  api: ApiClient,
  r: { state: string; chatIds: string[]; remark?: string },
) {
  const res = await api.call({
    method: 'groupchat.add_join_way',
    path: '/cgi-bin/externalcontact/groupchat/add_join_way',
    http: 'POST',
    body: {
      scene: 2,
      chat_id_list: r.chatIds.slice(0, 5),
      state: r.state,
      remark: r.remark,
      mark_source: true,
    },
    auth: true,
  })
  return String(res.config_id)
}

export async function getJoinWay(api: ApiClient, configId: string) {
  const res = await api.call({
    method: 'groupchat.get_join_way',
    path: '/cgi-bin/externalcontact/groupchat/get_join_way',
    http: 'POST',
    body: { config_id: configId },
    auth: true,
  })
  return res.join_way as { config_id: string; qr_code: string; state: string }
}

/** The userids a change_external_chat event names (`MemChangeList`: items, or the older CSV). */
export function changedMembers(f: PushFields): string[] | null {
  const list = f.MemChangeList
  if (list === undefined) return null
  if (typeof list === 'string')
    return list
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  const items = (list as { Item?: unknown }).Item
  if (Array.isArray(items)) return items.map(String)
  return items === undefined ? [] : [String(items)]
}
