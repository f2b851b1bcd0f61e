/**
 * In-memory stores with the same contracts as the database ones. For tests and benches only:
 * they hold state in one process, which production must never rely on.
 */
import type { Clock } from '../src/clock.js'
import {
  type InboundKey,
  type InboundOutcome,
  type InboundStore,
  ReplayRefusedError,
} from '../src/community/inbound-events.js'
import type { MemberStore, RecordedMember } from '../src/community/members.js'
import type { InboundStatus, Member } from '../src/db/schema.js'
import type { StoredToken, TokenStore } from '../src/wechat/api/token-store.js'

type Row = InboundOutcome & { followUp?: string | null }

/** A memory inbound store and member store sharing their claims, as the database ones do. */
export function memoryStores(): { inbound: InboundStore; members: MemberStore } {
  const rows = new Map<string, Row>()
  return { inbound: memoryInboundStore(rows), members: memoryMemberStore(rows) }
}

function memoryInboundStore(rows: Map<string, Row>): InboundStore {
  const id = (k: InboundKey) => `${k.appid}\u0000${k.dedupeKey}`
  const move = (k: InboundKey, from: InboundStatus, to: InboundStatus, patch?: Partial<Row>) => {
    const row = rows.get(id(k))
    if (!row || row.status !== from) return false
    // Not `{ status, ...patch }`: Node 20's V8 takes a slow path for a spread after a property.
    row.status = to
    if (patch) Object.assign(row, patch)
    return true
  }
  return {
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

function memoryMemberStore(claims: Map<string, Row>): MemberStore {
  const members = new Map<string, Member>()
  const replays = new Map<string, string>()
  let next = 1
  return {
    async receive(claim, message, now) {
      if (claim.replay) {
        const { door, timestamp, nonce, digest } = claim.replay
        const replayId = `${door}\u0000${claim.appid}\u0000${timestamp}\u0000${nonce}`
        const seen = replays.get(replayId)
        if (seen !== undefined && seen !== digest) throw new ReplayRefusedError()
        replays.set(replayId, digest)
      }
      const claimId = `${claim.appid}\u0000${claim.dedupeKey}`
      const claimed = claims.get(claimId)
      if (claimed)
        return { duplicate: true, outcome: { status: claimed.status, reply: claimed.reply } }
      claims.set(claimId, { status: 'processing', reply: null })
      const appid = claim.appid
      const key = `${appid}\u0000${message.fromUserName}`
      const known = members.get(key)
      const member = known ?? {
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
        points_frozen: 0,
        level: 'bronze',
        purchase_count: 0,
        last_purchased_at: null,
        marketing_opt_out: false,
        marketing_opted_out_at: null,
        last_campaign_at: null,
        display_name: null,
        birth_month: null,
        city: null,
      }
      const previous = known ? member.last_active_at : null
      member.last_active_at = now
      if (!known) members.set(key, member)
      // No moderators in memory: told with the claim, as the database store does.
      return received(member, { isNew: !known, previous })
    },
  }
}

/**
 * A copy of `m` as the claim received it, written out as one literal: V8 keeps it in a fast shape,
 * as the database store's parsed row (`memberFromJson`); `Object.assign({}, m, …)` of a row this
 * wide makes a dictionary-mode object, slower to make and to read (session 39).
 */
function received(m: Member, o: { isNew: boolean; previous: Date | null }): RecordedMember {
  return {
    id: m.id,
    appid: m.appid,
    openid: m.openid,
    unionid: m.unionid,
    subscribed: m.subscribed,
    subscribed_at: m.subscribed_at,
    unsubscribed_at: m.unsubscribed_at,
    subscribe_scene: m.subscribe_scene,
    subscribe_event_key: m.subscribe_event_key,
    first_seen_at: m.first_seen_at,
    last_active_at: m.last_active_at,
    last_inbound_at: m.last_inbound_at,
    points_balance: m.points_balance,
    points_lifetime: m.points_lifetime,
    points_frozen: m.points_frozen,
    level: m.level,
    purchase_count: m.purchase_count,
    last_purchased_at: m.last_purchased_at,
    marketing_opt_out: m.marketing_opt_out,
    marketing_opted_out_at: m.marketing_opted_out_at,
    last_campaign_at: m.last_campaign_at,
    display_name: m.display_name,
    birth_month: m.birth_month,
    city: m.city,
    isNew: o.isNew,
    previous_active_at: o.previous,
    dailyLogin: null,
    moderator: false,
  }
}

/** A memory token store: the lock is a promise chain per key, so it holds within one process only. */
export function memoryTokenStore(clock: Clock): TokenStore {
  const tokens = new Map<string, StoredToken>()
  const locks = new Map<string, Promise<unknown>>()
  return {
    async read(key) {
      const stored = tokens.get(key)
      return stored && { ...stored }
    },
    refresh(key, refresh) {
      const run = async (): Promise<StoredToken> => {
        const locked = tokens.get(key)
        if (locked && refresh.isFresh(locked)) return { ...locked }
        const next = await refresh.fetch()
        tokens.set(key, { token: next.token, expiresAt: next.expiresAt })
        return next
      }
      const result = (locks.get(key) ?? Promise.resolve()).then(run)
      locks.set(
        key,
        result.catch(() => {}),
      )
      return result
    },
    async expire(key, token) {
      const stored = tokens.get(key)
      if (stored?.token === token) stored.expiresAt = clock.now()
    },
  }
}
