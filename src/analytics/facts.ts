/**
 * The durable facts analytics reads (migrations/0030): `member_days` (a member's activity on a
 * community day, with its kinds as the bits below), `follow_events` (follows and unfollows with
 * their acquisition source), plus the engine's own tables (check-ins, the points ledger, invites,
 * orders and refunds, segment transitions, activity sign-ups, campaign recipients).
 */

/** Kinds of activity on a member day (bits of `member_days.kinds`). */
export const ACTIVITY = {
  /** An ordinary message (text, image, voice …): written by the push. */
  message: 1,
  /** A check-in made that day (not a make-up, 补签): OR-ed in by the rollup from `checkins`. */
  checkin: 2,
  /** A menu click or view event: written by the push. */
  click: 4,
  /** A paid order: OR-ed in by the rollup from `orders`. */
  purchase: 8,
  /** An activity sign-up: OR-ed in by the rollup from `activity_signups`. */
  signup: 16,
  /** Any other action (follow, QR scan, location …): written by the push. */
  other: 32,
} as const
