/**
 * The community's part of the bot context: the inbound pipeline (dispatch, group messages) supplies
 * these fields on every push, and they are declared on the router's `BotContext` by module
 * augmentation, so handlers keep one typed context without `src/bot` knowing the community.
 */
import type { Kysely } from 'kysely'
import type { CheckinRunner, CheckinSettings } from '../community/checkins.js'
import type { InviteSettings } from '../community/invites.js'
import type { RecordedMember } from '../community/members.js'
import type { ChannelIdentity, GroupRobots } from '../community/moderation.js'
import type { Database } from '../db/schema.js'

/** What the inbound pipeline adds to each handler's context. */
export interface CommunityContext {
  /** The sender as recorded for this push (`isNew`: this push created them). */
  member: RecordedMember
  db: Kysely<Database>
  /** The community's calendar and check-in rules. */
  community: CommunitySettings
  /** Who is speaking and where: the OA chat, or a group through the WeCom AI bot. */
  channel: ChannelIdentity
  /** The app's batched check-in statements (`checkinStatements`); absent: one per check-in. */
  checkins?: CheckinRunner
}

/** Community-wide settings handlers read. */
export interface CommunitySettings {
  timeZone: string
  checkin: CheckinSettings
  invites: InviteSettings
  /** Internal groups' robot webhooks (announcements). */
  robots: GroupRobots
  /** The shop's mini program (cashback rewards are confirmed there); absent without a shop. */
  miniProgram?: { appid: string }
}

declare module '../bot/context.js' {
  interface BotContext extends CommunityContext {}
}
