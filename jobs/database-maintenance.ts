/**
 * Every five minutes: VACUUM and ANALYZE where the database does not do it itself — PGlite, the
 * default, has no autovacuum (src/db/maintenance.ts). On PostgreSQL with `autovacuum` on: one query,
 * and the run's result says `skipped`.
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
