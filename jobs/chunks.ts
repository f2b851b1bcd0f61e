/**
 * A long job's work in resumable chunks. Each chunk is one transaction holding the chunk's writes
 * and the cursor of the next one (`ctx.saveCursor`), so a chunk whose transaction fails — or whose
 * process lost the run to another — leaves the cursor where it was; between chunks the
 * invocation's budget decides whether to go on. A paused or crashed run resumes from the saved
 * cursor, so repeated bounded runs end where one unbounded run would.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../src/db/schema.js'
import type { JobContext } from './types.js'

/** One chunk's outcome: the cursor the next chunk starts from, and whether the work is done. */
export interface ChunkStep<C> {
  cursor: C
  done: boolean
}

/** How a chunked run ended in this invocation. */
export interface ChunkedRun<C> {
  cursor: C
  /** False: the budget ran out first; the job returns `more: true`. */
  done: boolean
  /** Chunks committed in this invocation. */
  chunks: number
}

/**
 * Runs chunks from the saved cursor (or `start()` for a new run) until one says it is done or the
 * budget is spent; the first chunk always runs, so every invocation makes progress.
 * @example const run = await runChunks(ctx, { start: () => ({ after: 0 }), chunk: (trx, c) => … })
 */
export async function runChunks<C>(
  ctx: JobContext,
  o: {
    start(): C | Promise<C>
    chunk(trx: Transaction<Database>, cursor: C): Promise<ChunkStep<C>>
  },
): Promise<ChunkedRun<C>> {
  let cursor: C = ctx.cursor === undefined ? await o.start() : (ctx.cursor as C)
  let chunks = 0
  for (;;) {
    if (chunks > 0 && ctx.budget && !ctx.budget.left()) return { cursor, done: false, chunks }
    const from = cursor
    const step = await ctx.db.transaction().execute(async (trx) => {
      const next = await o.chunk(trx, from)
      await ctx.saveCursor?.(trx, next.cursor)
      return next
    })
    chunks++
    cursor = step.cursor
    if (step.done) return { cursor, done: true, chunks }
  }
}

/**
 * The id closing a chunk of `size` members after `after` (a walk of the primary key), or null
 * when fewer are left: the chunk then runs to the end.
 */
export async function memberChunkEnd(
  db: Kysely<Database>,
  after: number,
  size: number,
): Promise<number | null> {
  const row = await db
    .selectFrom('members')
    .select('id')
    .where('id', '>', after)
    .orderBy('id')
    .offset(size - 1)
    .limit(1)
    .executeTakeFirst()
  return row ? Number(row.id) : null
}
