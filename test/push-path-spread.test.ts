/**
 * The push path builds no object literal with a property after a spread (`{ ...a, b }`,
 * `{ ...a, ...b }`): Node 20's V8 takes a slow path for those properties, ~3–8 µs per literal
 * (about 10 µs for a member row) against 0.03–1 µs for `{ b, ...a }` or
 * `Object.assign({}, a, { b })` — together about a fifth of a push's CPU before they were removed
 * (bench/README.md, "Object spread"; `npm run bench:spread`). Other code may keep them: it does
 * not run per push.
 */
import { readFileSync } from 'node:fs'
import ts from 'typescript'
import { expect, it } from 'vitest'

/**
 * Every file a push runs through, from the route to the reply (and the logger each push makes),
 * WeCom group messages and follows included, and a check-in's handler.
 */
const PUSH_PATH = [
  'src/routes/wechat.ts',
  'src/wechat/webhook.ts',
  'src/wechat/envelope.ts',
  'src/wechat/codec.ts',
  'src/wechat/crypto.ts',
  'src/node-crypto.ts',
  'src/wechat/message.ts',
  'src/wechat/reply.ts',
  'src/inbound/dispatch.ts',
  'src/inbound/community-context.ts',
  'src/inbound/group-message.ts',
  'src/community/members.ts',
  'src/bot/context.ts',
  'src/bot/router.ts',
  'src/logger.ts',
  'handlers/subscribe.ts',
  'handlers/checkin.ts',
  'src/community/checkins.ts',
  'src/community/badges.ts',
  // The (b) bench's member store: what the bench measures for "no database".
  'test/memory-stores.ts',
]

/** `file:line` of each object literal that has a property or spread after a spread. */
function propertiesAfterSpread(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node) => {
    if (ts.isObjectLiteralExpression(node)) {
      const first = node.properties.findIndex(ts.isSpreadAssignment)
      if (first >= 0 && first < node.properties.length - 1) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart())
        found.push(`${file}:${line + 1}`)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

it('finds the shapes it forbids, and not the ones it allows', () => {
  const found = propertiesAfterSpread(
    'x.ts',
    [
      'const a = { ...b, c }', // 1: forbidden
      'const d = { ...b, ...e }', // 2: forbidden
      'const f = { c, ...b }', // allowed
      'const g = { ...b }', // allowed
      'const h = Object.assign({}, b, { c })', // allowed
    ].join('\n'),
  )
  expect(found).toEqual(['x.ts:1', 'x.ts:2'])
})

it('builds no object with properties after a spread on the push path', () => {
  const found = PUSH_PATH.flatMap((file) =>
    propertiesAfterSpread(file, readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')),
  )
  expect(found).toEqual([])
})
