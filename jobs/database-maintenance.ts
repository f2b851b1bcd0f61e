/**
 * Every five minutes: VACUUM and ANALYZE where the database does not do it itself — PGlite, the
 * default, has no autovacuum (src/db/maintenance.ts). Where PostgreSQL's autovacuum launcher runs:
 * one query, and the run says `skipped`.
 */
import { maintainTables } from '../src/db/maintenance.js'
import type { Job } from './types.js'

export const databaseMaintenanceJob: Job = {
  name: 'database-maintenance',
  cron: '*/5 * * * *',
  async run({ db }) {
    const summary = await maintainTables(db)
    return { ...summary }
  },
}
