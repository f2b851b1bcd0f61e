/** `npm run migrate`: applies migrations to DATABASE_URL (or the PGlite data folder) and exits. */
import { existsSync } from 'node:fs'
import { loadConfig } from '../config.js'
import { createLogger } from '../logger.js'
import { startupFailure } from '../node-process.js'
import { closeDatabase, openDatabase } from './open-database.js'

if (existsSync('.env')) process.loadEnvFile('.env')
const logger = createLogger({ level: 'info' })
try {
  const database = await openDatabase({
    ...loadConfig(process.env),
    role: 'migrate',
    progress: (message) => console.log(message),
  })
  console.log(`migrations applied (${database.kind} at ${database.location})`)
  await closeDatabase(database)
} catch (error) {
  startupFailure(logger, error)
}
