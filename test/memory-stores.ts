/**
 * In-memory stores with the same contracts as the database ones. For tests and benches only:
 * they hold state in one process, which production must never rely on.
 */
import type { InboundKey, InboundOutcome, InboundStore } from '../src/community/inbound-events.js'
import type { MemberStore } from '../src/community/members.js'
import type { InboundStatus, Member } from '../src/db/schema.js'

export function memoryInboundStore(): InboundStore {
  const rows = new Map<string, InboundOutcome & { followUp?: string | null }>()
  const id = (k: InboundKey) => `${k.appid}\u0000${k.dedupeKey}`
  const move = (k: InboundKey, from: InboundStatus, to: InboundStatus, patch = {}) => {
    const row = rows.get(id(k))
    if (!row || row.status !== from) return false
    Object.assign(row, { status: to, ...patch })
    return true
  }
  return {
    async claim(key) {
      if (rows.has(id(key))) return false
      rows.set(id(key), { status: 'processing', reply: null })
      return true
    },
    async complete(key, reply, _now, error) {
      return move(key, 'processing', error ? 'failed' : 'replied', { reply })
    },
    async defer(key) {
      return move(key, 'processing', 'deferred')
    },
    async recordFollowUp(key, followUp) {
      move(key, 'deferred', followUp === null ? 'replied' : 'follow_up', { followUp })
    },
    async read(key) {
      const row = rows.get(id(key))
      return row && { status: row.status, reply: row.reply }
    },
  }
}

export function memoryMemberStore(): MemberStore {
  const members = new Map<string, Member>()
  let next = 1
  return {
    async recordInbound(appid, message, now) {
      const key = `${appid}\u0000${message.fromUserName}`
      const member = members.get(key) ?? {
        id: next++,
        appid,
        openid: message.fromUserName,
        unionid: null,
        subscribed: true,
        subscribed_at: null,
        unsubscribed_at: null,
        subscribe_scene: null,
        subscribe_event_key: null,
        first_seen_at: now,
        last_active_at: now,
        last_inbound_at: null,
        points_balance: 0,
        points_lifetime: 0,
        level: 'bronze',
      }
      const previous = members.has(key) ? member.last_active_at : null
      member.last_active_at = now
      members.set(key, member)
      return { ...member, previous_active_at: previous }
    },
  }
}
