/**
 * Deletes settled inbound claims older than a week. WeChat retries within seconds, so a week is
 * only kept for support; claims still waiting for a follow-up are never deleted. Also deletes
 * replay-cache claims (src/community/replay-claims.ts) whose timestamp is outside the freshness
 * window (WECHAT_MAX_SKEW_SECONDS, plus a minute for clocks; a week when freshness is off):
 * a request that old is refused as stale before its nonce is looked at — and per-client rate-limit
 * buckets (`limit:…`) idle for an hour (full again, the same as none), and robot posts
 * (src/community/robot-posts.ts) claimed more than a week ago. Idempotent, so several
 * instances running it at once do no harm.
 */
import { pruneInboundEvents } from '../src/community/inbound-events.js'
import { LIMIT_PREFIX, pruneRateBuckets } from '../src/community/rate-buckets.js'
import { pruneReplayClaims } from '../src/community/replay-claims.js'
import { pruneRobotPosts } from '../src/community/robot-posts.js'
import type { Job } from './types.js'

const KEEP_DAYS = 7

export const pruneInboundEventsJob: Job = {
  name: 'prune-inbound-events',
  cron: '17 4 * * *',
  async run({ db, clock, config }) {
    const now = clock.now().getTime()
    const before = new Date(now - KEEP_DAYS * 86_400_000)
    const windowMs =
      config.maxSkewSeconds > 0 ? (config.maxSkewSeconds + 60) * 1000 : KEEP_DAYS * 86_400_000
    return {
      deleted: await pruneInboundEvents(db, before),
      replayClaims: await pruneReplayClaims(db, new Date(now - windowMs)),
      rateBuckets: await pruneRateBuckets(db, LIMIT_PREFIX, new Date(now - 3_600_000)),
      // a week, as the claims: no retry of the message that announced comes later
      robotPosts: await pruneRobotPosts(db, before),
    }
  },
}
