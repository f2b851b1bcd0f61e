/**
 * Daily at 00:05 community time: stamps new points lots with the expiry policy (POINTS_EXPIRY),
 * expires the due ones as `points_expiry` ledger entries, and enqueues the notices of points expiring
 * within POINTS_EXPIRY_NOTICE_DAYS (held until quiet hours end). Set-based; see
 * src/community/points-expiry.ts. The points expired are counted in `quanzi_points_expired_total`.
 */
import { translator } from '../src/bot/i18n.js'
import { runPointsExpiry } from '../src/community/points-expiry.js'
import type { Job } from './types.js'

export const expirePointsJob: Job = {
  name: 'expire-points',
  cron: '5 0 * * *',
  async run({ db, slot, config, metrics, budget }) {
    // Decided at the slot: a paused run resumed by a later tick continues at the same time.
    const { stamped, expired, announced, more } = await runPointsExpiry(db, {
      budget,
      now: slot,
      settings: config.pointsExpiry,
      campaigns: config.campaigns,
      t: translator(config.locale),
    })
    metrics?.pointsExpired(expired.points)
    return {
      stamped,
      expiredMembers: expired.members,
      expiredPoints: expired.points,
      notices: announced.notices,
      noticePoints: announced.points,
      ...(more ? { more } : {}),
    }
  },
}
