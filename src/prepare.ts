/**
 * Run by `npm install` (the `prepare` script, after the build): makes the PGlite template next to
 * the built server, so a first `npm start` copies a migrated database instead of running initdb.
 */
import { fileURLToPath } from 'node:url'
import { makePgliteTemplate } from './db/open-database.js'

// Beside the built server (dist/), where src/node.ts looks for it.
const templateDir = fileURLToPath(new URL('./pglite-template', import.meta.url))

const started = performance.now()
await makePgliteTemplate(templateDir)
console.log(
  `quanzi: PGlite template ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
)
