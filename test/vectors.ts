/** Loads the shared known-answer vectors (../shared/vectors) so tests never copy values. */
import { readFileSync } from 'node:fs'

export interface Vector {
  id: string
  kind: string
  inputs: Record<string, string>
  expected: Record<string, unknown>
  source: string
}

/** All vectors of a file in ../shared/vectors. */
export function loadVectors(file: string): Vector[] {
  const url = new URL(`../../shared/vectors/${file}`, import.meta.url)
  return JSON.parse(readFileSync(url, 'utf8')) as Vector[]
}
