/**
 * WeCom customer contact (客户联系): the XML callback (../shared/protocol/wecom-groups.md §3) — the OA
 * envelope with receive id = corp id, an encrypted echostr on URL verification — and the customer-
 * group APIs the join attribution uses. Web Crypto only.
 */

import type { ApiClient } from '../wechat/api/client.js'
import { WechatApiError } from '../wechat/api/errors.js'
import { type PushFields, parseXml, WechatFormatError } from '../wechat/codec.js'
import { messageCipher, signature, timingSafeEqual, webCrypto } from '../wechat/crypto.js'
import { type EnvelopeShape, type ReplayStamp, readEnvelope } from '../wechat/envelope.js'
import { WecomCallbackError } from './callback-error.js'
import {
  type CallbackCodecOptions,
  type CallbackQuery,
  checkCallbackQuery,
} from './callback-query.js'

export interface ContactCredentials {
  corpId: string
  token: string
  aesKey: string
}

/** The envelope WeCom posts: `<xml><ToUserName/><Encrypt/><AgentID/></xml>`, nothing else. */
const CONTACT_ENVELOPE: EnvelopeShape = {
  key: 'Encrypt',
  others: ['ToUserName', 'AgentID'],
  format: 'xml',
}

/**
 * The customer-contact callback codec. Always encrypted: a request is refused unless its query is
 * signed and fresh and its body is the envelope, all checked before anything is decrypted or
 * parsed.
 */
export function contactCodec(c: ContactCredentials, o: CallbackCodecOptions = {}) {
  const backend = o.crypto ?? webCrypto
  const cipher = messageCipher(c.aesKey, backend)
  async function open(q: CallbackQuery, encrypt: string): Promise<string> {
    const { msg_signature, timestamp, nonce } = checkCallbackQuery(q, o)
    const expected = await signature([c.token, timestamp, nonce, encrypt], backend)
    if (!timingSafeEqual(expected, msg_signature.toLowerCase()))
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
    verifyUrl(q: CallbackQuery) {
      if (!q.echostr) throw new WecomCallbackError(400, 'echostr is required')
      return open(q, q.echostr)
    },
    /** POST: the decrypted event's fields, and the stamp for the replay cache. */
    async open(
      q: CallbackQuery,
      body: string,
    ): Promise<{ fields: PushFields; stamp: ReplayStamp }> {
      const { timestamp, nonce } = checkCallbackQuery(q, o) // before the body is looked at
      let encrypt: string
      try {
        encrypt = readEnvelope(body, CONTACT_ENVELOPE).encrypt
      } catch (error) {
        if (!(error instanceof WechatFormatError)) throw error
        throw new WecomCallbackError(400, `body is not the callback XML: ${error.message}`)
      }
      const message = await open(q, encrypt)
      let fields: PushFields
      try {
        fields = parseXml(message)
      } catch {
        throw new WecomCallbackError(400, 'the decrypted event is not XML')
      }
      return { fields, stamp: { timestamp, nonce, digest: await backend.sha256Hex(body) } }
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

/**
 * Errcodes by which WeCom refuses a customer group for good, whatever the retry: 40050 invalid
 * group id (no such chat), 90501 not a customer group (该群不是客户群), 701008 (the chat is gone, as
 * the sandbox answers it), 40058 an invalid argument. Kept short on purpose, as ARGUMENT_ERRORS is:
 * anything else — busy, limits (45009, 45011, 45033), the token, the IP whitelist, a permission the
 * app lacks — may pass on WeCom's retry or once the operator fixes the deployment, so it keeps the
 * retry.
 */
const GROUP_REFUSALS = new Set([40050, 40058, 90501, 701008])

/** True when WeCom refused a call for good ({@link GROUP_REFUSALS}): its retry would be refused alike. */
export function isWecomRefusal(error: unknown): error is WechatApiError {
  return error instanceof WechatApiError && GROUP_REFUSALS.has(error.errcode)
}

/** WeCom takes at most five groups per join way (`chat_id_list`). */
export const JOIN_WAY_CHATS = 5

/**
 * A QR join way into up to five groups, carrying `state` (≤ 30 characters) into groupchat/get.
 * Not retried after a failure that may have reached WeCom (a timeout, a dropped connection, a
 * 5xx): it may have created a config whose `config_id` we never saw — one that counts against the
 * corp's quota for good and that nothing can delete (WeCom lists no join ways). Only a failure
 * known not to have executed (an errcode answer, a refused connection, a 503) is retried.
 */
export async function addJoinWay(api: ApiClient, r: JoinWayFields) {
  const res = await api.call({
    method: 'groupchat.add_join_way',
    path: '/cgi-bin/externalcontact/groupchat/add_join_way',
    http: 'POST',
    body: joinWayBody(r),
    auth: true,
    idempotent: false,
  })
  return String(res.config_id)
}

/** What this app sets on a join way (the rest of add_join_way's fields are left out). */
export interface JoinWayFields {
  state: string
  chatIds: string[]
  remark?: string
}

/** The body fields add_join_way and update_join_way share: the same for both, so nothing drifts. */
function joinWayBody(r: JoinWayFields) {
  return {
    scene: 2,
    chat_id_list: r.chatIds.slice(0, JOIN_WAY_CHATS),
    state: r.state,
    remark: r.remark,
    mark_source: true,
  }
}

/**
 * Points an existing join way at other groups, in place: its QR (already shared) keeps working. The
 * update overwrites the config, so every field add_join_way sent is sent again — `state` above all,
 * which credits the inviter. Idempotent (the same body twice leaves the same config), so retried
 * as any call.
 */
export async function updateJoinWay(api: ApiClient, configId: string, r: JoinWayFields) {
  await api.call({
    method: 'groupchat.update_join_way',
    path: '/cgi-bin/externalcontact/groupchat/update_join_way',
    http: 'POST',
    body: { config_id: configId, ...joinWayBody(r) },
    auth: true,
  })
}

/** A join way this app created: its QR, `state` and groups (`chat_id_list`). */
export async function getJoinWay(api: ApiClient, configId: string) {
  const res = await api.call({
    method: 'groupchat.get_join_way',
    path: '/cgi-bin/externalcontact/groupchat/get_join_way',
    http: 'POST',
    body: { config_id: configId },
    auth: true,
  })
  return res.join_way as {
    config_id: string
    qr_code: string
    state: string
    chat_id_list?: string[]
  }
}

/**
 * Deletes a join way this app created (its QR stops working). Join ways count against the corp's
 * quota shared with 「联系我」 (500 000), and API-created ones are not in the admin console.
 */
export async function delJoinWay(api: ApiClient, configId: string) {
  await api.call({
    method: 'groupchat.del_join_way',
    path: '/cgi-bin/externalcontact/groupchat/del_join_way',
    http: 'POST',
    body: { config_id: configId },
    auth: true,
  })
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
