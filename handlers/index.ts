/**
 * Every handler family, in the order their commands appear in 帮助 (within each command's group). A
 * new family is one file with `register(router)` and one line here.
 */
import { Router } from '../src/bot/router.js'
import * as activities from './activities.js'
import * as binding from './binding.js'
import * as checkin from './checkin.js'
import * as fallback from './fallback.js'
import * as greeting from './greeting.js'
import * as groupJoin from './group-join.js'
import * as help from './help.js'
import * as invite from './invite.js'
import * as leaderboard from './leaderboard.js'
import * as makeup from './makeup.js'
import * as moderation from './moderation.js'
import * as nickname from './nickname.js'
import * as points from './points.js'
import * as preferences from './preferences.js'
import * as profile from './profile.js'
import * as receipts from './receipts.js'
import * as reminders from './reminders.js'
import * as rewards from './rewards.js'
import * as subscribe from './subscribe.js'

const families = [
  help,
  checkin,
  makeup,
  points,
  leaderboard,
  rewards,
  invite,
  groupJoin,
  activities,
  nickname,
  profile,
  preferences,
  reminders,
  binding,
  moderation,
  subscribe,
  receipts,
  greeting,
  fallback,
]

/** A router with every handler registered. */
export function createRouter(): Router {
  const router = new Router()
  for (const family of families) family.register(router)
  return router
}
