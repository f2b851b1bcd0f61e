/**
 * vitest global setup: one migrated PGlite database, dumped to a tarball before the suites start,
 * so each suite's in-memory database loads it instead of running initdb and every migration
 * (`test/databases.ts`). Suites still run `migrateToLatest`, which then finds nothing to do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { Kysely } from 'kysely'
import type { TestProject } from 'vitest/node'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDialect } from '../src/db/pglite-driver.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the migrated PGlite tarball. */
    pgliteTemplate: string
  }
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'quanzi-test-template-'))
  const path = join(dir, 'pglite.tar')
  const pglite = new PGlite()
  const db = new Kysely({ dialect: pgliteDialect(pglite) })
  await migrateToLatest(db)
  const dump = await pglite.dumpDataDir('none')
  writeFileSync(path, Buffer.from(await dump.arrayBuffer()))
  await db.destroy()
  project.provide('pgliteTemplate', path)
  return () => rmSync(dir, { recursive: true, force: true })
}
