/** A table whose one column is a domain, made and dropped again (a domain's OID changes). */
import { type Kysely, sql } from 'kysely'

/**
 * `typed (x positive)`, `positive` an int domain with `value > 0`: `make()` creates both,
 * `drop()` drops both — made again, the domain has a new OID, as after a migration's way down
 * and up or a schema made anew.
 */
// biome-ignore lint/suspicious/noExplicitAny: any schema
export function positiveDomainTable(db: Kysely<any>) {
  return {
    async make() {
      await sql`create domain positive as int check (value > 0)`.execute(db)
      await sql`create table typed (x positive)`.execute(db)
    },
    async drop() {
      await sql`drop table typed`.execute(db)
      await sql`drop domain positive`.execute(db)
    },
    async values() {
      return (await sql<{ x: number }>`select x from typed`.execute(db)).rows
    },
  }
}
