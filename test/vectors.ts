/**
 * Loads the known-answer vectors kept in `test/vectors/` (copied from the team's shared set; each
 * vector keeps its `source`), so tests never copy values and never read outside the repository.
 */
import { readFileSync } from 'node:fs'

export interface Vector {
  id: string
  kind: string
  inputs: Record<string, string>
  expected: Record<string, string>
  source: string
}

/** All vectors of a file in test/vectors. */
export function loadVectors(file: string): Vector[] {
  const url = new URL(`./vectors/${file}`, import.meta.url)
  return JSON.parse(readFileSync(url, 'utf8')) as Vector[]
}

/** One vector by id; throws when it is missing, so a renamed vector fails loudly. */
export function loadVector(file: string, id: string): Vector {
  const found = loadVectors(file).find((v) => v.id === id)
  if (!found) throw new Error(`no vector ${id} in test/vectors/${file}`)
  return found
}
