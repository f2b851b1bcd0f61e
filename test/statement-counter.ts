/** A database that counts the statements run through it (BEGIN/COMMIT not included). */
import type { Kysely } from 'kysely'
import type { Database } from '../src/db/schema.js'

/**
 * Wraps `db` in a Kysely plugin that counts every statement sent through the wrapper.
 * @example const counted = countStatements(db); counted.reset(); …; expect(counted.count()).toBe(1)
 */
export function countStatements(db: Kysely<Database>) {
  let statements = 0
  return {
    db: db.withPlugin({
      transformQuery: (args) => {
        statements++
        return args.node
      },
      transformResult: async (args) => args.result,
    }),
    count: () => statements,
    reset: () => {
      statements = 0
    },
  }
}
