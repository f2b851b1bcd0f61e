/**
 * Rows a statement's plan reads, counted (never timed): `EXPLAIN ANALYZE` of it in a transaction
 * rolled back, and the most rows any node read. For plan tests that hold a statement to rows in
 * proportion to its driving set whatever the planner's statistics (src/community/campaign-plans.test.ts).
 */
import { CompiledQuery, type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../src/db/schema.js'

/** A node of `EXPLAIN (ANALYZE, FORMAT JSON)`. */
export type PlanNode = {
  'Node Type': string
  'Actual Rows': number
  'Actual Loops': number
  'Rows Removed by Filter'?: number
  'Rows Removed by Join Filter'?: number
  'Rows Removed by Index Recheck'?: number
  'Relation Name'?: string
  Plans?: PlanNode[]
}

/** The most rows any node of the plan read: produced, or read and filtered out (over all its loops). */
export function mostRows(node: PlanNode): number {
  const read =
    node['Actual Rows'] +
    (node['Rows Removed by Filter'] ?? 0) +
    (node['Rows Removed by Join Filter'] ?? 0) +
    (node['Rows Removed by Index Recheck'] ?? 0)
  return Math.max(read * node['Actual Loops'], ...(node.Plans ?? []).map((c) => mostRows(c)))
}

/** The rows the plan's scans of `relation` read (produced or filtered out, over all their loops). */
export function rowsFrom(node: PlanNode, relation: string): number {
  const own =
    node['Relation Name'] === relation
      ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops']
      : 0
  return own + (node.Plans ?? []).reduce((n, c) => n + rowsFrom(c, relation), 0)
}

/**
 * The plan `statement` ran by, analyzed in a transaction that is rolled back (a statement that
 * writes leaves nothing behind). `settings` runs first in that transaction: the planner settings
 * the code under test runs the statement with (`set local …`), so that it is planned as it runs.
 * @example expect(mostRows(await analyzedPlan(db, conversionsStatement(since, now)))).toBeLessThanOrEqual(5 * n)
 */
export async function analyzedPlan(
  db: Kysely<Database>,
  statement: RawBuilder<unknown> | CompiledQuery,
  settings?: (trx: Kysely<Database>) => Promise<void>,
): Promise<PlanNode> {
  let found: PlanNode | undefined
  await db
    .transaction()
    .execute(async (trx) => {
      await settings?.(trx)
      type Explained = { 'QUERY PLAN': { Plan: PlanNode }[] }
      const { rows } =
        'sql' in statement
          ? await trx.executeQuery<Explained>(
              CompiledQuery.raw(`explain (analyze, format json) ${statement.sql}`, [
                ...statement.parameters,
              ]),
            )
          : await sql<Explained>`explain (analyze, format json) ${statement}`.execute(trx)
      found = rows[0]!['QUERY PLAN'][0]!.Plan
      throw new Error('rolled back')
    })
    .catch((e: Error) => {
      if (e.message !== 'rolled back') throw e
    })
  return found!
}

/**
 * The statements `run` makes through the Kysely instance it is given (`db`, with a plugin that
 * compiles each one as it goes), to plan each with {@link analyzedPlan}: a test can hold every
 * statement of a whole operation to rows in proportion to its work.
 * @example for (const q of await statementsOf(db, (d) => recountReach(d, id, now))) …
 */
export async function statementsOf(
  db: Kysely<Database>,
  run: (db: Kysely<Database>) => Promise<unknown>,
): Promise<CompiledQuery[]> {
  const watched = watchedStatements(db)
  await run(watched.db)
  return watched.seen
}

/** `db` with a plugin that keeps each statement made through it (compiled) in `seen`. */
export function watchedStatements(db: Kysely<Database>) {
  const seen: CompiledQuery[] = []
  const executor = db.getExecutor()
  const watched = db.withPlugin({
    transformQuery: (args) => {
      seen.push(executor.compileQuery(args.node, args.queryId))
      return args.node
    },
    transformResult: async (args) => args.result,
  })
  return { db: watched, seen }
}
