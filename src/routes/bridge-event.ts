/**
 * One bridge event (`POST /bridge/:id`, see bridge.ts): its schema, and the digest that says which
 * event an `id` names. The first receipt of an id stores the digest with its claim; a later request
 * with the id and another digest is refused (409 `EVENT_ID_REUSED`), so an id cannot be used to
 * rewrite an event after the fact (another sender, another 绑定 code, other members).
 */
import * as v from 'valibot'
import { bodyDigest } from '../community/replay-claims.js'

const id = v.pipe(v.string(), v.minLength(1), v.maxLength(128))

/** The bridge's JSON, one event per request. */
export const bridgeEvent = v.variant('type', [
  v.strictObject({
    type: v.literal('message'),
    id,
    chat: v.optional(v.strictObject({ id, name: v.optional(v.string()) })),
    sender: v.strictObject({ id, name: v.optional(v.string()) }),
    text: v.pipe(v.string(), v.maxLength(4000)),
    mentioned: v.optional(v.boolean(), false),
  }),
  v.strictObject({
    type: v.literal('member_leave'),
    id,
    chat: v.strictObject({ id, name: v.optional(v.string()) }),
    members: v.pipe(
      v.array(v.strictObject({ id, name: v.optional(v.string()) })),
      v.minLength(1),
      v.maxLength(500),
    ),
  }),
  v.strictObject({
    type: v.literal('member_join'),
    id,
    chat: v.strictObject({ id, name: v.optional(v.string()) }),
    members: v.pipe(
      v.array(v.strictObject({ id, name: v.optional(v.string()), unionid: v.optional(id) })),
      v.minLength(1),
      v.maxLength(500),
    ),
    state: v.optional(v.pipe(v.string(), v.maxLength(64))),
  }),
])

export type BridgeEvent = v.InferOutput<typeof bridgeEvent>

/** The event with its keys sorted and display names (`name`) left out, as one JSON text. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'name')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, inner]) => [key, canonical(inner)]),
  )
}

/**
 * What identifies an event's content: `sha256:<hex>` of the parsed event (defaults applied:
 * `mentioned` absent is `false`) with its keys sorted, so a resend that orders or spaces its JSON
 * differently is the same event. Display names are left out: nothing is done with them, and a room
 * or contact may be renamed between two attempts at one event.
 * @example await bridgeEventDigest({ type: 'message', id: 'm1', sender: { id: 'wxid_a' }, text: '签到', mentioned: true })
 */
export async function bridgeEventDigest(e: BridgeEvent): Promise<string> {
  return `sha256:${await bodyDigest(JSON.stringify(canonical(e)))}`
}
