/** The one CSV writer: quoting, and text a spreadsheet would run as a formula made inert. */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { csvField, csvResponse } from './csv.js'

describe('csvField', () => {
  it('prefixes text that would start a formula with a quote mark, quoted or not', () => {
    expect(csvField('=HYPERLINK("http://x.example","点我")')).toBe(
      `"'=HYPERLINK(""http://x.example"",""点我"")"`,
    )
    expect(csvField('=1+1')).toBe("'=1+1")
    expect(csvField('+86 138')).toBe("'+86 138")
    expect(csvField('-2+3')).toBe("'-2+3")
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)")
    expect(csvField('\t=1')).toBe("'\t=1")
    expect(csvField('\r=1')).toBe(`"'\r=1"`)
    expect(csvField('-')).toBe("'-")
  })

  it('keeps numbers numbers, and plain text as it was', () => {
    expect(csvField(-5)).toBe('-5')
    expect(csvField(-0.25)).toBe('-0.25')
    expect(csvField('-5')).toBe('-5')
    expect(csvField('-0.25')).toBe('-0.25')
    expect(csvField(0)).toBe('0')
    expect(csvField(true)).toBe('true')
    expect(csvField(null)).toBe('')
    expect(csvField('双11, 返场')).toBe('"双11, 返场"')
    expect(csvField('a=b')).toBe('a=b')
  })
})

describe('csvResponse', () => {
  it('writes a campaign named as a formula as text', async () => {
    const app = new Hono().get('/', (c) =>
      csvResponse(c, 'c.csv', ['campaign', 'delta'], [['=cmd|"/c calc"!A1', -5]]),
    )
    const res = await app.request('/')
    expect(await res.text()).toBe(`campaign,delta\n"'=cmd|""/c calc""!A1",-5\n`)
  })
})
