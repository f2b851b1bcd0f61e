/** `npm run migrate`: applies migrations to DATABASE_URL (or the PGlite data folder) and exits. */
import { existsSync } from 'node:fs'
import { loadConfig } from '../config.js'
import { openDatabase } from './open-database.js'

if (existsSync('.env')) process.loadEnvFile('.env')
const { db, kind, location } = await openDatabase(loadConfig(process.env))
console.log(`migrations applied (${kind} at ${location})`)
await db.destroy()
