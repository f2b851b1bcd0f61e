/**
 * Typed inbound messages and events of the official-account protocol (§2 of the reference), and
 * the keys used to de-duplicate them. Unknown types are kept as `unknown` and ignored downstream.
 */
import { type PushFields, WechatFormatError } from './codec.js'

interface Base {
  /** The account's original id (`gh_…`). */
  toUserName: string
  /** The sender's openid. */
  fromUserName: string
  /** Unix seconds. */
  createTime: number
  /** Every field as received, for handlers that need something not typed here. */
  raw: PushFields
}

interface Msg extends Base {
  msgId: string
}

export interface TextMessage extends Msg {
  type: 'text'
  content: string
  msgDataId?: string
  idx?: string
}
export interface ImageMessage extends Msg {
  type: 'image'
  picUrl: string
  mediaId: string
}
export interface VoiceMessage extends Msg {
  type: 'voice'
  mediaId: string
  format: string
  recognition?: string
}
export interface VideoMessage extends Msg {
  type: 'video' | 'shortvideo'
  mediaId: string
  thumbMediaId: string
}
export interface LocationMessage extends Msg {
  type: 'location'
  latitude: number
  longitude: number
  scale: number
  label: string
}
export interface LinkMessage extends Msg {
  type: 'link'
  title: string
  description: string
  url: string
}

interface Ev extends Base {
  type: 'event'
}
/** A follow; `scene` is the parametric-QR scene (`qrscene_` stripped) or null for a plain follow. */
export interface SubscribeEvent extends Ev {
  event: 'subscribe'
  eventKey: string | null
  scene: string | null
  ticket: string | null
}
export interface UnsubscribeEvent extends Ev {
  event: 'unsubscribe'
}
/** An existing follower scanned a parametric QR code. */
export interface ScanEvent extends Ev {
  event: 'SCAN'
  eventKey: string
  scene: string
  ticket: string | null
}
export interface LocationEvent extends Ev {
  event: 'LOCATION'
  latitude: number
  longitude: number
  precision: number
}
export interface ClickEvent extends Ev {
  event: 'CLICK'
  eventKey: string
}
export interface ViewEvent extends Ev {
  event: 'VIEW' | 'view_miniprogram'
  eventKey: string
  menuId: string | null
}
export interface TemplateSendJobFinishEvent extends Ev {
  event: 'TEMPLATESENDJOBFINISH'
  msgId: string
  status: string
}
/** One template in a subscribe-message event list. */
export interface SubscribeMsgItem {
  templateId: string
  status?: string
  popupScene?: string
  msgId?: string
  errorCode?: string
  errorStatus?: string
}
export interface SubscribeMsgEvent extends Ev {
  event: 'subscribe_msg_popup_event' | 'subscribe_msg_change_event' | 'subscribe_msg_sent_event'
  items: SubscribeMsgItem[]
}
/** Any event this file does not type (menu scans, mass-send results …). */
export interface OtherEvent extends Base {
  type: 'other_event'
  event: string
  eventKey: string | null
}
/** A message type this file does not know; accepted and ignored. */
export interface UnknownMessage extends Base {
  type: 'unknown'
  msgType: string
  msgId: string | null
}

export type InboundMessage =
  | TextMessage
  | ImageMessage
  | VoiceMessage
  | VideoMessage
  | LocationMessage
  | LinkMessage
  | SubscribeEvent
  | UnsubscribeEvent
  | ScanEvent
  | LocationEvent
  | ClickEvent
  | ViewEvent
  | TemplateSendJobFinishEvent
  | SubscribeMsgEvent
  | OtherEvent
  | UnknownMessage

export type InboundEvent = Extract<InboundMessage, { type: 'event' | 'other_event' }>

/** True for events (typed or not), false for ordinary messages and unknown types. */
export function isEvent(m: InboundMessage): m is InboundEvent {
  return m.type === 'event' || m.type === 'other_event'
}

/**
 * A follow or parametric-QR scan, normalised (§2.3): `subscribe` with `qrscene_X` → `{ scene: X,
 * isNewFollower: true }`; `SCAN` with `X` → `{ scene: X, isNewFollower: false }`; a plain follow →
 * `{ scene: null, isNewFollower: true }`. Scene `0` (a code created with `action_info.scene_id`
 * instead of `action_info.scene.scene_id`) carries nothing and reads as null. Null for other pushes.
 */
export function qrScan(m: InboundMessage): { scene: string | null; isNewFollower: boolean } | null {
  if (m.type !== 'event' || (m.event !== 'subscribe' && m.event !== 'SCAN')) return null
  const scene = m.scene && m.scene !== '0' ? m.scene : null
  return { scene, isNewFollower: m.event === 'subscribe' }
}

function str(f: PushFields, name: string): string {
  const v = f[name]
  return typeof v === 'string' ? v : ''
}
function opt(f: PushFields, name: string): string | null {
  const v = f[name]
  return typeof v === 'string' && v !== '' ? v : null
}
function num(f: PushFields, name: string): number {
  const n = Number(str(f, name))
  return Number.isFinite(n) ? n : 0
}

/**
 * Types a parsed push. Requires the common header (ToUserName, FromUserName, CreateTime, MsgType);
 * throws {@link WechatFormatError} when it is missing.
 */
export function toInboundMessage(f: PushFields): InboundMessage {
  const toUserName = str(f, 'ToUserName')
  const fromUserName = str(f, 'FromUserName')
  const createTime = str(f, 'CreateTime')
  const msgType = str(f, 'MsgType')
  if (!toUserName || !fromUserName || !msgType || !/^\d{1,12}$/.test(createTime)) {
    throw new WechatFormatError(
      'push lacks ToUserName, FromUserName, MsgType or a numeric CreateTime',
    )
  }
  // `base` goes last in each literal below: its four keys are not among the others, and Node 20's
  // V8 takes a slow path for properties that follow a spread (`{ ...base, type }`: ~3 µs a push,
  // `{ type, ...base }`: ~0.06; bench/README.md, "Object spread").
  const base: Base = { toUserName, fromUserName, createTime: Number(createTime), raw: f }
  const msgId = str(f, 'MsgId')
  switch (msgType) {
    case 'text':
      return {
        type: 'text',
        msgId,
        content: str(f, 'Content'),
        msgDataId: opt(f, 'MsgDataId') ?? undefined,
        idx: opt(f, 'Idx') ?? undefined,
        ...base,
      }
    case 'image':
      return { type: 'image', msgId, picUrl: str(f, 'PicUrl'), mediaId: str(f, 'MediaId'), ...base }
    case 'voice':
      return {
        type: 'voice',
        msgId,
        mediaId: str(f, 'MediaId'),
        format: str(f, 'Format'),
        recognition: opt(f, 'Recognition') ?? undefined,
        ...base,
      }
    case 'video':
    case 'shortvideo':
      return {
        type: msgType,
        msgId,
        mediaId: str(f, 'MediaId'),
        thumbMediaId: str(f, 'ThumbMediaId'),
        ...base,
      }
    case 'location':
      return {
        type: 'location',
        msgId,
        latitude: num(f, 'Location_X'),
        longitude: num(f, 'Location_Y'),
        scale: num(f, 'Scale'),
        label: str(f, 'Label'),
        ...base,
      }
    case 'link':
      return {
        type: 'link',
        msgId,
        title: str(f, 'Title'),
        description: str(f, 'Description'),
        url: str(f, 'Url'),
        ...base,
      }
    case 'event':
      return toEvent(base, f)
    default:
      return { type: 'unknown', msgType, msgId: opt(f, 'MsgId'), ...base }
  }
}

function toEvent(base: Base, f: PushFields): InboundEvent {
  const event = str(f, 'Event')
  const eventKey = opt(f, 'EventKey')
  switch (event) {
    case 'subscribe': {
      const scene = eventKey?.startsWith('qrscene_') ? eventKey.slice('qrscene_'.length) : null
      return {
        type: 'event',
        event,
        eventKey,
        scene: scene || null,
        ticket: opt(f, 'Ticket'),
        ...base,
      }
    }
    case 'unsubscribe':
      return { type: 'event', event, ...base }
    case 'SCAN':
      return {
        type: 'event',
        event,
        eventKey: eventKey ?? '',
        scene: eventKey ?? '',
        ticket: opt(f, 'Ticket'),
        ...base,
      }
    case 'LOCATION':
      return {
        type: 'event',
        event,
        latitude: num(f, 'Latitude'),
        longitude: num(f, 'Longitude'),
        precision: num(f, 'Precision'),
        ...base,
      }
    case 'CLICK':
      return { type: 'event', event, eventKey: eventKey ?? '', ...base }
    case 'VIEW':
    case 'view_miniprogram':
      return { type: 'event', event, eventKey: eventKey ?? '', menuId: opt(f, 'MenuId'), ...base }
    case 'TEMPLATESENDJOBFINISH':
      return {
        type: 'event',
        event,
        msgId: str(f, 'MsgID') || str(f, 'MsgId'),
        status: str(f, 'Status'),
        ...base,
      }
    case 'subscribe_msg_popup_event':
    case 'subscribe_msg_change_event':
    case 'subscribe_msg_sent_event':
      return { type: 'event', event, items: subscribeItems(f, event), ...base }
    default:
      return { type: 'other_event', event, eventKey, ...base }
  }
}

const LIST_CONTAINER: Record<string, string> = {
  subscribe_msg_popup_event: 'SubscribeMsgPopupEvent',
  subscribe_msg_change_event: 'SubscribeMsgChangeEvent',
  subscribe_msg_sent_event: 'SubscribeMsgSentEvent',
}

/** `List` may occur once or many times (and in JSON as an object or array): always a list. */
function subscribeItems(f: PushFields, event: string): SubscribeMsgItem[] {
  const container = f[LIST_CONTAINER[event]!]
  if (!container || typeof container !== 'object' || Array.isArray(container)) return []
  const list = container.List
  const items = Array.isArray(list) ? list : list && typeof list === 'object' ? [list] : []
  return items
    .filter((item): item is PushFields => typeof item === 'object')
    .map((item) => ({
      templateId: str(item, 'TemplateId'),
      status: opt(item, 'SubscribeStatusString') ?? undefined,
      popupScene: opt(item, 'PopupScene') ?? undefined,
      msgId: opt(item, 'MsgID') ?? undefined,
      errorCode: opt(item, 'ErrorCode') ?? undefined,
      errorStatus: opt(item, 'ErrorStatus') ?? undefined,
    }))
}

/**
 * The key that makes WeChat's retries of one push recognisable: `MsgId` for messages;
 * FromUserName + CreateTime + Event + EventKey for events (job-finish events add their MsgID).
 */
export function dedupeKey(m: InboundMessage): string {
  if (isEvent(m)) {
    const jobId = typeof m.raw.MsgID === 'string' ? m.raw.MsgID : ''
    const extra = jobId || ('eventKey' in m && m.eventKey) || ''
    return `e:${m.fromUserName}:${m.createTime}:${m.event}:${extra}`
  }
  if (m.msgId) return `m:${m.msgId}`
  return `u:${m.fromUserName}:${m.createTime}:${m.type === 'unknown' ? m.msgType : m.type}`
}
