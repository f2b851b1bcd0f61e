/**
 * Robot posts at most once: an announcement's post through a group's robot is claimed as a unique
 * (`source`, chat) row before the webhook is called, like the outbox marks a customer-service
 * message before sending it. A retry of the message that announced (a bridge event handled again
 * after a later step failed) finds the row and reports what the first attempt got instead of
 * posting again. The answer is stored as soon as it is known; a post that did not go for certain
 * (the rate limit held it, WeCom answered with an error) is released for a retry to post.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'

/** One announcement in one group. */
export interface RobotPostKey {
  /** The announcement's source, e.g. `announce:<actor>:<dedupe key>`. */
  source: string
  chatId: string
}

/** What an earlier attempt at a post got. */
export interface EarlierRobotPost {
  status: 'sent' | 'failed'
  error?: string
}

/**
 * Claims the post: undefined when this caller is to post it, else what the attempt that claimed it
 * recorded (one that did not record an answer counts as failed: it is not posted again).
 */
export async function claimRobotPost(
  db: Kysely<Database>,
  k: RobotPostKey,
  now: Date,
): Promise<EarlierRobotPost | undefined> {
  const claimed = await db
    .insertInto('robot_posts')
    .values({ source: k.source, chat_id: k.chatId, status: 'sending', created_at: now })
    .onConflict((oc) => oc.columns(['source', 'chat_id']).doNothing())
    .returning('source')
    .executeTakeFirst()
  if (claimed) return undefined
  const earlier = await db
    .selectFrom('robot_posts')
    .select(['status', 'error'])
    .where('source', '=', k.source)
    .where('chat_id', '=', k.chatId)
    .executeTakeFirst()
  if (earlier?.status === 'sent') return { status: 'sent' }
  return {
    status: 'failed',
    error:
      earlier?.status === 'failed' && earlier.error
        ? earlier.error
        : 'an earlier attempt posted it without an answer: not posted again',
  }
}

/** Stores the webhook's answer: `sent`, or `failed` when none came (it may have been posted). */
export async function recordRobotPost(
  db: Kysely<Database>,
  k: RobotPostKey,
  outcome: EarlierRobotPost,
): Promise<void> {
  await db
    .updateTable('robot_posts')
    .set({ status: outcome.status, error: outcome.error ?? null })
    .where('source', '=', k.source)
    .where('chat_id', '=', k.chatId)
    .execute()
}

/** Gives the claim up: the post certainly did not go, a retry may post it. */
export async function releaseRobotPost(db: Kysely<Database>, k: RobotPostKey): Promise<void> {
  await db
    .deleteFrom('robot_posts')
    .where('source', '=', k.source)
    .where('chat_id', '=', k.chatId)
    .execute()
}

/** Deletes posts claimed before `before` (no retry comes that late); returns how many. */
export async function pruneRobotPosts(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom('robot_posts')
    .where('created_at', '<', before)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
