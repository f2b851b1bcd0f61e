/**
 * The sandbox Pay server's bills (protocol reference §2): `GET /v3/bill/tradebill` and
 * `/v3/bill/fundflowbill` answer a signed `{hash_type, hash_value, download_url}` for a day in
 * Asia/Shanghai, built from the sandbox's own payments and refunds; `GET /v3/billdownload/file`
 * serves the file itself, unsigned, GZIP when asked (`tar_type=GZIP`), for five minutes. A day
 * without activity is `400 NO_STATEMENT_EXIST`. Controls (not WeChat Pay) inject what
 * reconciliation must find: a payment WeChat Pay took for an order the shop never made, a refund
 * made outside the shop, a bill still being made (`STATEMENT_CREATING`) or a wrong hash.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import type { SandboxOrder } from './pay-server.js'

const OFFICIAL = 'https://api.mch.weixin.qq.com'

/** Trade bill columns (format-trade, 2024-11-25) by `bill_type`, detail then summary. */
const ALL = [
  ...['交易时间', '公众账号ID', '商户号', '特约商户号', '设备号', '微信订单号', '商户订单号'],
  ...['用户标识', '交易类型', '交易状态', '付款银行', '货币种类', '应结订单金额', '代金券金额'],
  ...['微信退款单号', '商户退款单号', '退款金额', '充值券退款金额', '退款类型', '退款状态'],
  ...['商品名称', '商户数据包', '手续费', '费率', '订单金额', '申请退款金额', '费率备注'],
]
const ALL_SUMMARY = [
  ...['总交易单数', '应结订单总金额', '退款总金额', '充值券退款总金额', '手续费总金额'],
  ...['订单总金额', '申请退款总金额'],
]
const TRADE: Record<string, { columns: string[]; summary: string[] }> = {
  ALL: { columns: ALL, summary: ALL_SUMMARY },
  SUCCESS: {
    columns: ALL.filter((c) => !/退款/.test(c)),
    summary: ['总交易单数', '应结订单总金额', '手续费总金额', '订单总金额'],
  },
  REFUND: {
    columns: [...ALL.slice(0, 14), '退款申请时间', '退款成功时间', ...ALL.slice(14)],
    summary: ALL_SUMMARY,
  },
}
const FUND_FLOW = [
  ...['记账时间', '微信支付业务单号', '资金流水单号', '业务名称', '业务类型', '收支类型'],
  ...['收支金额(元)', '账户结余(元)', '资金变更提交申请人', '备注', '业务凭证号'],
]
const FUND_FLOW_SUMMARY = ['资金流水总笔数', '收入笔数', '收入金额', '支出笔数', '支出金额']

/** Integer fen as a bill writes yuan: `1990` → `19.90`, `-18` → `-0.18`. */
export const fenToYuan = (fen: number) =>
  `${fen < 0 ? '-' : ''}${Math.floor(Math.abs(fen) / 100)}.${String(Math.abs(fen) % 100).padStart(2, '0')}`

/** Beijing time `YYYY-MM-DD HH:mm:ss` of an instant. */
const beijing = (at: Date) =>
  new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ')
/** The sandbox's success_time (`…T…+08:00`) as a bill writes it. */
const fromCst = (cst: string) => `${cst.slice(0, 10)} ${cst.slice(11, 19)}`

/** The fee WeChat Pay keeps (0.6 %, to the fen). */
const fee = (fen: number) => Math.round((fen * 6) / 1000)

/** A bill fault to inject: the next bills are still being made, or carry a wrong hash. */
export type BillFault = 'creating' | 'hash' | null

interface Entry {
  at: string
  row: Record<string, string>
}

const ticked = (values: string[]) => `\`${values.join(',`')}`

/** The bills of a sandbox's orders; `handle` answers the three bill requests. */
export function sandboxBills(o: {
  orders: Map<string, SandboxOrder>
  appid: string
  mchid: string
  /** The sandbox's clock: a payment or refund made here without a time is dated by it. */
  now: () => Date
  reply: (res: ServerResponse, status: number, json?: unknown) => void
  error: (res: ServerResponse, status: number, code: string, message: string) => void
}) {
  const files = new Map<string, { bytes: Buffer; expires: number }>()
  let fault: BillFault = null
  let seq = 0

  /** Payment and refund lines of a day (trade bill), in time order. */
  function tradeEntries(date: string): Entry[] {
    const entries: Entry[] = []
    for (const [no, order] of o.orders) {
      const total = (order.body.amount as { total: number }).total
      const base = {
        公众账号ID: String(order.body.appid),
        商户号: String(order.body.mchid),
        特约商户号: '0',
        设备号: '',
        微信订单号: order.transactionId ?? '',
        商户订单号: no,
        用户标识: (order.body.payer as { openid: string }).openid,
        交易类型: 'JSAPI',
        付款银行: 'OTHERS',
        货币种类: 'CNY',
        代金券金额: '0.00',
        充值券退款金额: '0.00',
        商品名称: String(order.body.description ?? ''),
        商户数据包: '',
        费率: '0.60%',
        费率备注: '',
      }
      if (order.successTime?.startsWith(date))
        entries.push({
          at: fromCst(order.successTime),
          row: {
            ...base,
            交易时间: fromCst(order.successTime),
            交易状态: 'SUCCESS',
            应结订单金额: fenToYuan(total),
            微信退款单号: '0',
            商户退款单号: '0',
            退款金额: '0.00',
            退款类型: '',
            退款状态: '',
            手续费: fenToYuan(fee(total)),
            订单金额: fenToYuan(total),
            申请退款金额: '0.00',
          },
        })
      for (const r of order.refunds.values()) {
        const at = beijing(r.createdAt)
        if (!at.startsWith(date)) continue
        entries.push({
          at,
          row: {
            ...base,
            交易时间: at,
            交易状态: 'REFUND',
            应结订单金额: '0.00',
            微信退款单号: r.refund_id,
            商户退款单号: r.out_refund_no,
            退款金额: fenToYuan(r.amount),
            退款类型: 'ORIGINAL',
            退款状态: r.status === 'SUCCESS' ? 'SUCCESS' : r.status,
            退款申请时间: at,
            退款成功时间: r.status === 'SUCCESS' ? at : '',
            手续费: fenToYuan(-fee(r.amount)),
            订单金额: '0.00',
            申请退款金额: fenToYuan(r.amount),
          },
        })
      }
    }
    return entries.sort((a, b) => a.at.localeCompare(b.at))
  }

  /** The basic account's flows of a day: payments in, their fees and refunds out. */
  function fundFlowEntries(date: string): Entry[] {
    const flows: {
      at: string
      id: string
      name: string
      type: string
      income: boolean
      fen: number
      ref: string
    }[] = []
    for (const [no, order] of o.orders) {
      const total = (order.body.amount as { total: number }).total
      const id = order.transactionId ?? ''
      if (order.successTime?.startsWith(date)) {
        const at = fromCst(order.successTime)
        flows.push({ at, id, name: '交易', type: '交易', income: true, fen: total, ref: no })
        flows.push({
          at,
          id,
          name: '扣除交易手续费',
          type: '扣除交易手续费',
          income: false,
          fen: fee(total),
          ref: no,
        })
      }
      for (const r of order.refunds.values()) {
        const at = beijing(r.createdAt)
        if (at.startsWith(date))
          flows.push({
            at,
            id: r.refund_id,
            name: '退款',
            type: '退款',
            income: false,
            fen: r.amount,
            ref: r.out_refund_no,
          })
      }
    }
    flows.sort((a, b) => a.at.localeCompare(b.at))
    let balance = 0
    return flows.map((f, i) => {
      balance += f.income ? f.fen : -f.fen
      return {
        at: f.at,
        row: {
          记账时间: f.at,
          微信支付业务单号: f.id,
          资金流水单号: `${date.replace(/-/g, '')}${String(i + 1).padStart(8, '0')}`,
          业务名称: f.name,
          业务类型: f.type,
          收支类型: f.income ? '收入' : '支出',
          '收支金额(元)': fenToYuan(f.fen),
          '账户结余(元)': fenToYuan(balance),
          资金变更提交申请人: 'system',
          备注: '',
          业务凭证号: f.ref,
        },
      }
    })
  }

  /** A bill's text (BOM, header, backticked lines, summary), or null when the day had none. */
  function billText(kind: 'trade' | 'fundflow', date: string, type = 'ALL'): string | null {
    const trade = kind === 'trade' ? TRADE[type] : undefined
    let entries = kind === 'trade' ? tradeEntries(date) : fundFlowEntries(date)
    if (type === 'SUCCESS') entries = entries.filter((e) => e.row.交易状态 === 'SUCCESS')
    if (type === 'REFUND') entries = entries.filter((e) => e.row.交易状态 === 'REFUND')
    if (entries.length === 0) return null
    const columns = trade?.columns ?? FUND_FLOW
    const summary = trade?.summary ?? FUND_FLOW_SUMMARY
    const sumOf = (column: string, rows = entries) =>
      fenToYuan(rows.reduce((n, e) => n + yuanFen(e.row[column] ?? '0.00'), 0))
    const incomes = entries.filter((e) => e.row.收支类型 === '收入')
    const expenses = entries.filter((e) => e.row.收支类型 === '支出')
    const totals: Record<string, string> = {
      总交易单数: String(entries.length),
      应结订单总金额: sumOf('应结订单金额'),
      退款总金额: sumOf('退款金额'),
      充值券退款总金额: sumOf('充值券退款金额'),
      手续费总金额: sumOf('手续费'),
      订单总金额: sumOf('订单金额'),
      申请退款总金额: sumOf('申请退款金额'),
      资金流水总笔数: String(entries.length),
      收入笔数: String(incomes.length),
      收入金额: sumOf('收支金额(元)', incomes),
      支出笔数: String(expenses.length),
      支出金额: sumOf('收支金额(元)', expenses),
    }
    const lines = [
      columns.join(','),
      ...entries.map((e) => ticked(columns.map((c) => e.row[c] ?? ''))),
      summary.join(','),
      ticked(summary.map((c) => totals[c]!)),
    ]
    return `\uFEFF${lines.join('\r\n')}\r\n`
  }

  return {
    billText,
    /** Answers a bill request; false when `url` is not one. */
    handle(method: string, url: URL, res: ServerResponse): boolean {
      if (method !== 'GET') return false
      const kind =
        url.pathname === '/v3/bill/tradebill'
          ? 'trade'
          : url.pathname === '/v3/bill/fundflowbill'
            ? 'fundflow'
            : null
      if (url.pathname === '/v3/billdownload/file') {
        const file = files.get(url.searchParams.get('token') ?? '')
        if (!file || file.expires < Date.now()) {
          o.error(res, 400, 'INVALID_REQUEST', 'download_url expired or unknown')
          return true
        }
        // Not signed, binary: what the client must read without verifying.
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        res.end(file.bytes)
        return true
      }
      if (!kind) return false
      const date = url.searchParams.get('bill_date') ?? ''
      const type =
        kind === 'trade'
          ? (url.searchParams.get('bill_type') ?? 'ALL')
          : (url.searchParams.get('account_type') ?? 'BASIC')
      const tar = url.searchParams.get('tar_type')
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
        o.error(res, 400, 'PARAM_ERROR', 'bill_date: yyyy-MM-dd')
        return true
      }
      if (
        (kind === 'trade' ? !TRADE[type] : type !== 'BASIC') ||
        (tar !== null && tar !== 'GZIP')
      ) {
        o.error(res, 400, 'PARAM_ERROR', 'bill_type / account_type / tar_type')
        return true
      }
      if (fault === 'creating') {
        o.error(res, 400, 'STATEMENT_CREATING', '账单生成中')
        return true
      }
      const text = billText(kind, date, kind === 'trade' ? type : 'ALL')
      if (text === null) {
        o.error(res, 400, 'NO_STATEMENT_EXIST', '请求的账单文件不存在')
        return true
      }
      const original = Buffer.from(text, 'utf8')
      const hash = createHash('sha1').update(original).digest('hex')
      const token = encodeURIComponent(randomBytes(24).toString('base64')) + String(++seq)
      files.set(decodeURIComponent(token), {
        bytes: tar === 'GZIP' ? gzipSync(original) : original,
        expires: Date.now() + 5 * 60_000,
      })
      o.reply(res, 200, {
        hash_type: 'SHA1',
        // Upper case: the client must compare without regard to case.
        hash_value: (fault === 'hash'
          ? createHash('sha1').update('tampered').digest('hex')
          : hash
        ).toUpperCase(),
        download_url: `${OFFICIAL}/v3/billdownload/file?token=${token}${tar === 'GZIP' ? '&tartype=gzip' : ''}`,
      })
      return true
    },
    /** Bills answer STATEMENT_CREATING, or a wrong hash, until set back to null. */
    setFault(f: BillFault) {
      fault = f
    },
    /**
     * A payment WeChat Pay took for an order the shop never made (no notification): it appears
     * in the day's bill only.
     */
    foreignPayment(p: { outTradeNo: string; totalFen: number; openid?: string; at?: Date }) {
      const at = p.at ?? o.now()
      const transactionId = `4200${at.getTime()}${String(++seq).padStart(6, '0')}`
      o.orders.set(p.outTradeNo, {
        body: {
          appid: o.appid,
          mchid: o.mchid,
          description: '商户平台收款',
          out_trade_no: p.outTradeNo,
          amount: { total: p.totalFen, currency: 'CNY' },
          payer: { openid: p.openid ?? 'o_foreign_payer' },
        },
        prepayId: '',
        state: 'SUCCESS',
        transactionId,
        successTime: `${beijing(at).replace(' ', 'T')}+08:00`,
        refunds: new Map(),
      })
      return { transactionId }
    },
    /** A refund made at WeChat Pay outside the shop (the merchant platform), already successful. */
    foreignRefund(p: { outTradeNo: string; outRefundNo: string; refundFen: number; at?: Date }) {
      const order = o.orders.get(p.outTradeNo)
      if (!order) throw new Error(`sandbox pay: no order ${p.outTradeNo}`)
      const refundId = `5030${Date.now()}${++seq}`
      order.refunds.set(p.outRefundNo, {
        refund_id: refundId,
        out_refund_no: p.outRefundNo,
        out_trade_no: p.outTradeNo,
        amount: p.refundFen,
        status: 'SUCCESS',
        createdAt: p.at ?? o.now(),
      })
      return { refundId }
    },
  }
}

/** A sandbox yuan text back to fen (its own output only: two decimals). */
const yuanFen = (yuan: string) => {
  const negative = yuan.startsWith('-')
  const [whole, fraction = '00'] = yuan.replace('-', '').split('.')
  const fen = Number(whole) * 100 + Number(fraction.padEnd(2, '0').slice(0, 2))
  return negative ? -fen : fen
}
