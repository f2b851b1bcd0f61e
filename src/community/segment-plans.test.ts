/**
 * A chunk of the segment recompute (jobs/recompute-segments.ts: JOB_CHUNK_MEMBERS members by id)
 * reads rows in proportion to the chunk, not to the segments already written. Joined on the
 * chunk's members alone, the planner hashed the chunk and read every `member_segments` row — the
 * job's earlier chunks', or a night before's — once per chunk: a first compute over 1,000,000
 * members on the default database (PGlite) in chunks of 5,000 read about 100,000,000 segment rows,
 * and each chunk held the one connection (and the pushes behind it) for that long (bench/README.md,
 * session 32). Counted, not timed: `EXPLAIN ANALYZE` of the chunk's statement, rolled back.
 */
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { analyzedPlan, mostRows } from '../../test/plan-rows.js'
import {
  DEFAULT_SEGMENT_THRESHOLDS,
  recomputeSegments,
  recomputeSettings,
  recomputeStatement,
} from './segments.js'

/** Members whose segments are written before the chunk (far above any linear chunk's rows). */
const N = 4_000
/** The chunk's members. */
const CHUNK = 200

forEachDatabase('a segment recompute chunk', (get, dbName) => {
  for (const stats of ['never analyzed', 'analyzed'] as const)
    it(`reads rows in proportion to its members, not to the segments written (${stats})`, async () => {
      const { db } = get()
      const appid = `wxsegplan${stats[0]}${dbName.padEnd(8, '0')}`
      const joined = new Date('2026-09-01T00:00:00Z')
      const ids = await db
        .insertInto('members')
        .values(
          Array.from({ length: N }, (_, i) => ({
            appid,
            openid: `o_segplan_${i}`,
            subscribed: true,
            first_seen_at: joined,
            // spread over 200 days, so that a night later some of them move
            last_active_at: new Date(joined.getTime() + (i % 200) * 86_400_000),
          })),
        )
        .returning('id')
        .execute()
      const first = ids.map((r) => Number(r.id)).sort((a, b) => a - b)
      const options = { thresholds: DEFAULT_SEGMENT_THRESHOLDS, timeZone: 'Asia/Shanghai' }
      // Every member placed: the segments a night before wrote (or the job's earlier chunks).
      const night = new Date('2027-02-01T19:30:00Z')
      expect(await recomputeSegments(db, { ...options, appid, now: night })).toBe(N)
      if (stats === 'analyzed') await sql`analyze members, member_segments`.execute(db)

      // A chunk in the middle of the members, the next night, as the job runs it (by id alone).
      const after = first[N / 2]!
      const through = first[N / 2 + CHUNK]!
      const chunk = recomputeStatement({
        ...options,
        now: new Date(night.getTime() + 86_400_000),
        ids: { after, through },
      })
      // Planned under the settings the job runs it with (work_mem, JIT): a larger work_mem is what
      // makes hashing a whole table look cheap.
      expect(mostRows(await analyzedPlan(db, chunk, recomputeSettings))).toBeLessThanOrEqual(
        5 * CHUNK + 50,
      )
      // …and it recomputes just that chunk: members whose segment moved overnight, no others.
      const moved = await recomputeSegments(db, {
        ...options,
        now: new Date(night.getTime() + 86_400_000),
        ids: { after, through },
      })
      expect(moved).toBeGreaterThan(0)
      expect(moved).toBeLessThanOrEqual(CHUNK)
      // One transition for each member it moved, every one of them inside the chunk.
      const { inside, outside } = await db
        .selectFrom('segment_transitions')
        .select([
          sql<number>`count(*) filter (where member_id > ${after} and member_id <= ${through})::int`.as(
            'inside',
          ),
          sql<number>`count(*) filter (where member_id <= ${after} or member_id > ${through})::int`.as(
            'outside',
          ),
        ])
        .where('appid', '=', appid)
        .where('at', '>', night)
        .executeTakeFirstOrThrow()
      expect({ inside, outside }).toEqual({ inside: moved, outside: 0 })
    })
})
