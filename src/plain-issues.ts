/**
 * valibot's issues in plain words, never the value received: the one wording of input problems for
 * the operator API (routes/validate.ts) and the configuration (config.ts). Given as valibot's
 * `message` option, so it words only the issues a schema left without a message of its own —
 * valibot's defaults (`Invalid type: Expected string but received 20261205`) echo the value,
 * which may be a secret (a Token) or a member's data, and say `Expected never` for an unknown key.
 */
import type * as v from 'valibot'

/** valibot's name of a type it expected (`string`, `Object`), in plain words. */
const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  bigint: 'a number',
  boolean: 'true or false',
  Object: 'an object',
  Array: 'an array',
  null: 'null',
  Date: 'a date',
}

/**
 * The wording function, with some type words replaced (`{ Object: 'a JSON object' }` where the
 * input is JSON text).
 * @example v.safeParse(schema, input, { message: plainIssues() })
 */
export function plainIssues(words: Record<string, string> = {}) {
  const types = { ...TYPE_WORDS, ...words }
  return (issue: v.BaseIssue<unknown>): string => {
    const { expected } = issue
    if (expected === 'never') return 'is not a known field'
    if (issue.input === undefined && issue.kind === 'schema') return 'is required'
    const requirement = (issue as { requirement?: unknown }).requirement
    const unit = typeof issue.input === 'string' ? 'characters' : 'items'
    switch (issue.type) {
      case 'min_length':
        return requirement === 1 ? 'must not be empty' : `must be at least ${requirement} ${unit}`
      case 'max_length':
        return `must be at most ${requirement} ${unit}`
      case 'length':
        return `must be exactly ${requirement} ${unit}`
      case 'max_bytes':
        return `must be at most ${requirement} bytes`
      case 'max_value':
        return `must be at most ${requirement}`
      case 'min_value':
        return `must be at least ${requirement}`
      case 'integer':
      case 'safe_integer':
        return 'must be a whole number'
    }
    if (issue.kind !== 'schema') return 'is not valid'
    if (expected && types[expected]) return `must be ${types[expected]}`
    if (expected && /^"[^"]*"$/.test(expected)) return `must be ${expected}`
    if (expected && /^\("[^"]*"( \| "[^"]*")+\)$/.test(expected))
      return `must be one of ${expected.slice(1, -1).split(' | ').join(', ')}`
    return 'has the wrong type'
  }
}
