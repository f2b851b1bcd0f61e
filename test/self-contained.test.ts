/**
 * A fresh clone must pass with nothing beside it: no source, test, script or fixture may reach a
 * path outside the repository (such as the team's `../shared`, which only CI's clone has beside it).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { expect, it } from 'vitest'

const ROOT = new URL('..', import.meta.url).pathname
const SKIP = new Set(['node_modules', '.git', 'data', 'coverage', '.wrangler'])

function* codeFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* codeFiles(path)
    else if (/\.(ts|tsx|js|mjs|cjs|json)$/.test(entry.name) || entry.name === 'run') yield path
  }
}

it('reads nothing outside the repository', () => {
  // An import, require, readFile or URL whose relative path climbs out to a sibling folder.
  const climbsOut = /(from\s+|import\(|require\(|readFile\w*\(|new URL\()\s*[`'"](\.\.\/)+shared\//
  const offenders: string[] = []
  for (const file of codeFiles(ROOT)) {
    const lines = readFileSync(file, 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (climbsOut.test(line)) offenders.push(`${relative(ROOT, file)}:${i + 1}`)
    })
  }
  expect(offenders).toEqual([])
})

it('keeps the known-answer vectors with their sources', () => {
  for (const file of ['wechat-crypto.json', 'wechatpay.json']) {
    const vectors = JSON.parse(readFileSync(join(ROOT, 'test/vectors', file), 'utf8')) as {
      id: string
      source?: string
    }[]
    expect(vectors.length).toBeGreaterThan(0)
    expect(vectors.filter((v) => !v.source).map((v) => v.id)).toEqual([])
  }
})

it('mocks no module: test files share their workers’ modules (vitest.config.ts, isolate: false)', () => {
  // A module mock or a stubbed global would leak into the test files run after it in the worker.
  const leaks = /\bvi\.(mock|doMock|stubGlobal|stubEnv)\(/
  const offenders: string[] = []
  for (const file of codeFiles(ROOT)) {
    if (!/\.test\.tsx?$/.test(file) || file.endsWith('self-contained.test.ts')) continue
    const lines = readFileSync(file, 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (leaks.test(line)) offenders.push(`${relative(ROOT, file)}:${i + 1}`)
    })
  }
  expect(offenders).toEqual([])
})
