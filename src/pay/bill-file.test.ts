import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { BillIntegrityError, openBill } from './bill-download.js'
import { BillFormatError, checkSummary, parseBill, yuanToFen } from './bill-file.js'

/**
 * A trade bill of type ALL in the documented format (format-trade, 2024-11-25; the example values
 * of its field list: 2015-01-01 10:00:00, wxab8acb865bb11234, 1234567890): a payment, a partial
 * refund of it (refund rows carry no settlement amount), a second payment. BOM, CRLF, a final
 * newline, and a product name with a comma in it.
 */
const ALL_HEADER =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注'
const ALL_SUMMARY_HEADER =
  '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额'
const line = (fields: string[]) => `\`${fields.join(',`')}`
const tradeBill = (summary: string[]) =>
  `\uFEFF${[
    ALL_HEADER,
    line([
      ...['2015-01-01 10:00:00', 'wxab8acb865bb11234', '1234567890', '0', ''],
      ...['4200000991201501011234567890', 'QZ20150101A', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'],
      ...['JSAPI', 'SUCCESS', 'OTHERS', 'CNY', '1990.00', '0.00', '0', '0', '0.00', '0.00'],
      ...['', '', '茶,礼盒', '', '11.94', '0.60%', '1990.00', '0.00', ''],
    ]),
    line([
      ...['2015-01-01 11:30:00', 'wxab8acb865bb11234', '1234567890', '0', ''],
      ...['4200000991201501011234567890', 'QZ20150101A', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'],
      ...['JSAPI', 'REFUND', 'OTHERS', 'CNY', '0.00', '0.00', '50300001234567', 'RF-1'],
      ...['0.10', '0.00', 'ORIGINAL', 'SUCCESS', '茶,礼盒', '', '-0.00', '0.60%', '0.00'],
      ...['0.10', ''],
    ]),
    line([
      ...['2015-01-01 23:59:59', 'wxab8acb865bb11234', '1234567890', '0', ''],
      ...['4200000991201501019876543210', 'QZ20150101B', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'],
      ...['JSAPI', 'SUCCESS', 'OTHERS', 'CNY', '0.07', '0.00', '0', '0', '0.00', '0.00'],
      ...['', '', '会员', '', '0.00', '0.60%', '0.07', '0.00', ''],
    ]),
    ALL_SUMMARY_HEADER,
    line(summary),
  ].join('\r\n')}\r\n`
const GOOD_SUMMARY = ['3', '1990.07', '0.10', '0.00', '11.94', '1990.07', '0.10']

describe('bill files', () => {
  it('reads the header plainly, strips the backticks and the BOM, keeps commas inside fields', () => {
    const bill = parseBill(tradeBill(GOOD_SUMMARY))
    expect(bill.header[0]).toBe('交易时间') // no BOM left on the first column's name
    expect(bill.rows).toHaveLength(3)
    expect(bill.rows[0]).toMatchObject({
      交易时间: '2015-01-01 10:00:00',
      商户订单号: 'QZ20150101A',
      交易状态: 'SUCCESS',
      商品名称: '茶,礼盒',
      订单金额: '1990.00',
    })
    expect(bill.rows[1]).toMatchObject({
      交易状态: 'REFUND',
      商户退款单号: 'RF-1',
      退款金额: '0.10',
    })
    expect(bill.summary).toMatchObject({ 总交易单数: '3', 应结订单总金额: '1990.07' })
  })

  it('maps columns by header name, whatever their order', () => {
    const text = '商户订单号,交易时间,订单金额\n`QZ1,`2025-01-01 10:00:00,`0.10\n总交易单数\n`1\n'
    const shuffled =
      '订单金额,商户订单号,交易时间\n`0.10,`QZ1,`2025-01-01 10:00:00\n总交易单数\n`1\n'
    expect(parseBill(shuffled).rows).toEqual(parseBill(text).rows)
  })

  it('converts yuan to fen exactly, never through a float', () => {
    const cases: [string, number][] = [
      ['0.10', 10],
      ['0.1', 10],
      ['1990.00', 199000],
      ['20.0', 2000],
      ['0.07', 7], // 0.07 * 100 = 7.000000000000001 as a float
      ['1.15', 115], // 1.15 * 100 = 114.99999999999999
      ['19.99', 1999],
      ['-0.18', -18],
      ['1.230', 123],
      ['0', 0],
      ['-0.00', 0],
    ]
    for (const [yuan, fen] of cases) expect([yuan, yuanToFen(yuan)]).toEqual([yuan, fen])
    for (const bad of ['', '1,000.00', '1e3', '0.006', '0.00600', '¥1.00', '.5', '1.'])
      expect(() => yuanToFen(bad), bad).toThrow(BillFormatError)
  })

  it('checks the summary line against the sum of its lines', () => {
    const ok = checkSummary(parseBill(tradeBill(GOOD_SUMMARY)))
    expect(ok.map((c) => c.column)).toEqual([
      '总交易单数',
      '应结订单总金额',
      '退款总金额',
      '充值券退款总金额',
      '手续费总金额',
      '订单总金额',
      '申请退款总金额',
    ])
    expect(ok.every((c) => c.ok)).toBe(true)
    const wrong = checkSummary(
      parseBill(tradeBill(['4', '1990.08', '0.10', '0.00', '11.94', '1990.07', '0.10'])),
    )
    expect(wrong.filter((c) => !c.ok)).toEqual([
      { column: '总交易单数', bill: '4', lines: '3', ok: false },
      { column: '应结订单总金额', bill: '1990.08', lines: '1990.07', ok: false },
    ])
  })

  it('reads the early format by its header names (总金额, 企业红包金额)', () => {
    const text = [
      '交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率',
      line([
        ...['2015-01-01 10:00:00', 'wxab8acb865bb11234', '1234567890', '0', ''],
        ...['4200000991201501011234567890', 'QZ1', 'o1', 'JSAPI', 'SUCCESS', 'CFT', 'CNY'],
        ...['0.01', '0.00', '0', '0', '0.00', '0.00', '', '', '测试', '', '0.00000', '0.60%'],
      ]),
      '总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额',
      line(['1', '0.01', '0.00', '0.00', '0.00000']),
    ].join('\n')
    const bill = parseBill(text)
    expect(bill.rows[0]).toMatchObject({ 总金额: '0.01', 企业红包金额: '0.00' })
    const checks = checkSummary(bill)
    expect(checks.map((c) => [c.column, c.ok])).toEqual([
      ['总交易单数', true],
      ['手续费总金额', true],
      ['总交易额', true],
      ['总退款金额', true],
      ['总企业红包退款金额', true],
    ])
  })

  it('totals a fund-flow bill by income and expense', () => {
    const text = [
      '记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),资金变更提交申请人,备注,业务凭证号',
      line([
        ...['2015-01-01 10:00:00', '4200000991201501011234567890', '1', '交易', '交易', '收入'],
        ...['20.00', '20.00', 'system', '', 'QZ1'],
      ]),
      line([
        ...['2015-01-01 10:00:00', '4200000991201501011234567890', '2', '扣除交易手续费'],
        ...['扣除交易手续费', '支出', '0.12', '19.88', 'system', '', 'QZ1'],
      ]),
      '资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额',
      line(['2', '1', '20.0', '1', '0.12']),
    ].join('\n')
    expect(checkSummary(parseBill(text)).every((c) => c.ok)).toBe(true)
    expect(
      checkSummary(parseBill(text.replace('`1,`20.0', '`1,`20.1'))).filter((c) => !c.ok),
    ).toEqual([{ column: '收入金额', bill: '20.1', lines: '20.00', ok: false }])
  })

  it('refuses lines that do not follow the format, naming them', () => {
    expect(() => parseBill('交易时间\n总交易单数\n')).toThrow(BillFormatError)
    expect(() => parseBill('交易时间,商户订单号\n`2025-01-01,`QZ1,`extra\n总交易单数\n`1')).toThrow(
      /line 2: 3 fields, the header has 2/,
    )
    expect(() => parseBill('交易时间,商户订单号\n2025-01-01,QZ1\n总交易单数\n`1')).toThrow(
      /line 2: fields must start with a backtick/,
    )
  })

  it('opens a bill: GZIP undone, then the SHA-1 of the original bytes (BOM included) checked', () => {
    const original = Buffer.from(tradeBill(GOOD_SUMMARY), 'utf8')
    const sha1 = createHash('sha1').update(original).digest('hex')
    const plain = openBill(original, { hashType: 'SHA1', hashValue: sha1.toUpperCase() })
    expect(Buffer.from(plain).equals(original)).toBe(true)
    const unzipped = openBill(gzipSync(original), { hashType: 'SHA1', hashValue: sha1 })
    expect(Buffer.from(unzipped).equals(original)).toBe(true)
    // the hash of the GZIP bytes, or of the text without its BOM, is not the bill's
    const ofGzip = createHash('sha1').update(gzipSync(original)).digest('hex')
    expect(() => openBill(gzipSync(original), { hashType: 'SHA1', hashValue: ofGzip })).toThrow(
      BillIntegrityError,
    )
    const noBom = createHash('sha1').update(original.subarray(3)).digest('hex')
    expect(() => openBill(original, { hashType: 'SHA1', hashValue: noBom })).toThrow(
      BillIntegrityError,
    )
    expect(() => openBill(original, { hashType: 'SM3', hashValue: sha1 })).toThrow(/hash_type/)
    const broken = gzipSync(original).subarray(0, 20)
    expect(() => openBill(broken, { hashType: 'SHA1', hashValue: sha1 })).toThrow(/decompress/)
  })
})
