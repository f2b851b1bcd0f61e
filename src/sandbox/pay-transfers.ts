/**
 * The sandbox WeChat Pay server's merchant transfers (商家转账, the 2025 user-confirmation version,
 * ../shared/protocol/wechatpay-v3-transfers-bills.md §1), plugged into pay-server.ts, which verifies
 * each request's `Authorization` and signs each answer:
 *
 *   POST /v3/fund-app/mch-transfer/transfer-bills                         create (checked as §1.2)
 *   GET  /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}        query (`mch_id`)
 *   POST /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}/cancel cancel (empty body)
 *
 * A bill is created WAIT_USER_CONFIRM with a `package_info` (or ACCEPTED, `answerTransfersWith`);
 * the same number with another body is refused. Controls play the member and WeChat Pay:
 * `confirmTransfer` (the member confirms in the mini program → SUCCESS), `failTransfer`,
 * `expireTransfers` (24 h → FAIL OVERDUE_CLOSE), each sending MCHTRANSFER.BILL.FINISHED
 * (`mch_payment`) to the bill's notify_url; `faultTransferCreates` makes the next creates answer
 * 500 or carry the call out and drop the answer, `faultTransferQueries` the next queries answer
 * an error (a proxy's 404, say) whatever the bill. `POST /sandbox/transfer/{no}/confirm` is the
 * confirmation over HTTP (the shop demo).
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

type State =
  | 'ACCEPTED'
  | 'PROCESSING'
  | 'WAIT_USER_CONFIRM'
  | 'TRANSFERING'
  | 'SUCCESS'
  | 'FAIL'
  | 'CANCELING'
  | 'CANCELLED'

/** One bill as the sandbox keeps it. */
export interface SandboxTransfer {
  /** The create body as first received (a retry must send the same). */
  raw: string
  body: Record<string, unknown>
  transferBillNo: string
  state: State
  packageInfo: string
  failReason?: string
  createdAt: Date
  updatedAt: Date
}

/** What the next create does instead of answering normally. */
export type TransferCreateFault =
  /** 500 SYSTEM_ERROR, nothing created. */
  | 'error'
  /** The bill is created, then the connection is dropped without an answer (a timeout to us). */
  | 'drop'
  /** Any refusal, nothing created. */
  | { status: number; code: string; message: string }
  /** `text` as is, unsigned, nothing created — a proxy's error page (no answer of WeChat Pay's). */
  | { status: number; text: string }

/**
 * What the next query answers instead of the bill: an error answer of WeChat Pay's own shape
 * (signed JSON), or `text` as is, unsigned — a proxy's or a wrong route's 404 page.
 */
export type TransferQueryFault =
  | { status: number; code: string; message: string }
  | { status: number; text: string }

/** What the transfers need from the Pay server. */
export interface TransferServerContext {
  mchid: string
  appid: string
  reply(res: ServerResponse, status: number, json?: unknown): void
  error(res: ServerResponse, status: number, code: string, message: string): void
  notify(
    url: string,
    resource: Record<string, unknown>,
  ): {
    notification: { body: string; headers: Record<string, string> }
    send(): Promise<{ status: number; body: string }>
  }
}

const BILLS = '/v3/fund-app/mch-transfer/transfer-bills'
const SCENE_1000 = ['活动名称', '奖励说明']
const PERCEPTIONS = ['现金奖励', '活动奖励']
const FINAL: State[] = ['SUCCESS', 'FAIL', 'CANCELLED']
const chars = (s: unknown) => (typeof s === 'string' ? [...s].length : -1)
const cst = (at: Date) =>
  `${new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 19)}+08:00`

export function sandboxTransfers(ctx: TransferServerContext) {
  const bills = new Map<string, SandboxTransfer>()
  const requests = new Map<string, string[]>()
  const faults: TransferCreateFault[] = []
  const queryFaults: TransferQueryFault[] = []
  const deliveries = new Set<Promise<unknown>>()
  let answerWith: 'WAIT_USER_CONFIRM' | 'ACCEPTED' = 'WAIT_USER_CONFIRM'
  let seq = 0

  const resource = (no: string, t: SandboxTransfer) => ({
    mch_id: ctx.mchid,
    out_bill_no: no,
    transfer_bill_no: t.transferBillNo,
    appid: t.body.appid,
    state: t.state,
    transfer_amount: t.body.transfer_amount,
    transfer_remark: t.body.transfer_remark,
    ...(t.failReason ? { fail_reason: t.failReason } : {}),
    openid: t.body.openid,
    create_time: cst(t.createdAt),
    update_time: cst(t.updatedAt),
  })
  const created = (no: string, t: SandboxTransfer) => ({
    out_bill_no: no,
    transfer_bill_no: t.transferBillNo,
    create_time: cst(t.createdAt),
    state: t.state,
    ...(t.state === 'WAIT_USER_CONFIRM' ? { package_info: t.packageInfo } : {}),
    ...(t.failReason ? { fail_reason: t.failReason } : {}),
  })

  /** Moves a bill to a final state and sends MCHTRANSFER.BILL.FINISHED (unless `deliver: false`). */
  async function finish(no: string, state: State, o: { failReason?: string; deliver?: boolean }) {
    const t = bills.get(no)
    if (!t) throw new Error(`sandbox pay: no transfer ${no}`)
    t.state = state
    t.failReason = o.failReason
    t.updatedAt = new Date()
    const n = notification(no)
    if (o.deliver === false || typeof t.body.notify_url !== 'string')
      return { notification: n.notification, answer: null }
    const sending = n.send()
    deliveries.add(sending)
    try {
      return { notification: n.notification, answer: await sending }
    } finally {
      deliveries.delete(sending)
    }
  }

  function notification(no: string) {
    const t = bills.get(no)!
    return ctx.notify(String(t.body.notify_url ?? ''), resource(no, t))
  }

  /** Checks a create body as WeChat Pay does (§1.2, §1.8); the refusal, or undefined. */
  function invalid(b: Record<string, unknown>): [number, string, string] | undefined {
    if (b.appid !== ctx.appid) return [400, 'INVALID_REQUEST', 'APPID不存在']
    if (b.transfer_scene_id !== '1000') return [400, 'INVALID_REQUEST', '你尚未获取该转账场景']
    const infos = b.transfer_scene_report_infos as { info_type?: unknown; info_content?: unknown }[]
    if (
      !Array.isArray(infos) ||
      infos.length !== SCENE_1000.length ||
      !SCENE_1000.every((type) =>
        infos.some(
          (i) => i.info_type === type && chars(i.info_content) >= 1 && chars(i.info_content) <= 32,
        ),
      )
    )
      return [400, 'PARAM_ERROR', '未传入完整且对应的转账场景报备信息']
    if (
      b.user_recv_perception !== undefined &&
      !PERCEPTIONS.includes(String(b.user_recv_perception))
    )
      return [400, 'INVALID_REQUEST', '暂不支持展示当前传入的用户收款感知']
    if (typeof b.openid !== 'string' || b.openid.length < 1 || b.openid.length > 64)
      return [400, 'PARAM_ERROR', 'openid is required']
    const amount = b.transfer_amount
    if (!Number.isInteger(amount)) return [400, 'PARAM_ERROR', 'transfer_amount: integer fen']
    if ((amount as number) < 10)
      return [400, 'INVALID_REQUEST', '超过单笔转账上下限,核实产品设置是否准确']
    if ((amount as number) >= 200_000 && b.user_name === undefined)
      return [400, 'PARAM_ERROR', '转账金额>=2000元时,收款用户姓名必填']
    if (chars(b.transfer_remark) < 1 || chars(b.transfer_remark) > 32)
      return [400, 'PARAM_ERROR', 'transfer_remark: 1–32 characters']
    if (
      b.notify_url !== undefined &&
      (typeof b.notify_url !== 'string' || b.notify_url.includes('?'))
    )
      return [400, 'PARAM_ERROR', 'notify_url: an absolute URL without a query']
    return undefined
  }

  /** The transfer APIs, after the Authorization check; false when the path is not one of them. */
  async function api(req: IncomingMessage, url: URL, raw: string, res: ServerResponse) {
    if (req.method === 'POST' && url.pathname === BILLS) {
      let b: Record<string, unknown>
      try {
        b = JSON.parse(raw)
      } catch {
        ctx.error(res, 400, 'PARAM_ERROR', 'body is not JSON')
        return true
      }
      const no = String(b.out_bill_no ?? '')
      requests.set(no, [...(requests.get(no) ?? []), raw])
      const fault = faults.shift()
      if (fault === 'error') {
        ctx.error(res, 500, 'SYSTEM_ERROR', '系统错误')
        return true
      }
      if (fault && fault !== 'drop') {
        if ('text' in fault) {
          res.writeHead(fault.status, { 'content-type': 'text/html' })
          res.end(fault.text)
        } else ctx.error(res, fault.status, fault.code, fault.message)
        return true
      }
      if (!/^[A-Za-z0-9]{1,32}$/.test(no)) {
        ctx.error(res, 400, 'PARAM_ERROR', 'out_bill_no: 1–32 letters or digits')
        return true
      }
      const existing = bills.get(no)
      if (existing) {
        if (existing.raw !== raw) {
          ctx.error(res, 400, 'INVALID_REQUEST', '商户单号已存在，请求参数与原单据不一致')
          return true
        }
      } else {
        const refused = invalid(b)
        if (refused) {
          ctx.error(res, ...refused)
          return true
        }
        const at = new Date()
        bills.set(no, {
          raw,
          body: b,
          transferBillNo: `1330${Date.now()}${String(++seq).padStart(6, '0')}`,
          state: answerWith,
          packageInfo: `ABBQO+oYAAAB${randomBytes(24).toString('base64')}`,
          createdAt: at,
          updatedAt: at,
        })
      }
      if (fault === 'drop') {
        res.socket?.destroy()
        return true
      }
      ctx.reply(res, 200, created(no, bills.get(no)!))
      return true
    }
    const one = new RegExp(`^${BILLS}/out-bill-no/([^/]+)(/cancel)?$`).exec(url.pathname)
    if (!one) return false
    const no = decodeURIComponent(one[1]!)
    const t = bills.get(no)
    if (req.method === 'GET' && !one[2]) {
      const fault = queryFaults.shift()
      if (fault && 'text' in fault) {
        res.writeHead(fault.status, { 'content-type': 'text/html' })
        res.end(fault.text)
      } else if (fault) ctx.error(res, fault.status, fault.code, fault.message)
      else if (!t) ctx.error(res, 404, 'NOT_FOUND', '记录不存在')
      else ctx.reply(res, 200, resource(no, t))
      return true
    }
    if (req.method === 'POST' && one[2]) {
      if (raw !== '') {
        ctx.error(res, 400, 'PARAM_ERROR', 'the cancel takes no body')
        return true
      }
      if (!t) {
        ctx.error(res, 404, 'NOT_FOUND', '记录不存在')
        return true
      }
      const cancelling = ['ACCEPTED', 'PROCESSING', 'WAIT_USER_CONFIRM'].includes(t.state)
      if (cancelling) {
        t.state = 'CANCELING'
        t.updatedAt = new Date()
      } else if (t.state !== 'CANCELING' && t.state !== 'CANCELLED') {
        ctx.error(res, 400, 'INVALID_REQUEST', '当前单据状态不支持撤销')
        return true
      }
      ctx.reply(res, 200, {
        out_bill_no: no,
        transfer_bill_no: t.transferBillNo,
        state: t.state,
        update_time: cst(t.updatedAt),
      })
      // The cancel completes after the answer: CANCELLED, and its notification.
      if (cancelling) void finish(no, 'CANCELLED', { failReason: 'MCH_CANCEL' })
      return true
    }
    return false
  }

  /** `POST /sandbox/transfer/{no}/confirm` (not WeChat Pay): the member confirms, as the demo's phone would. */
  async function control(req: IncomingMessage, url: URL, res: ServerResponse) {
    const m = /^\/sandbox\/transfer\/([^/]+)\/confirm$/.exec(url.pathname)
    if (!m || req.method !== 'POST') return false
    const no = decodeURIComponent(m[1]!)
    if (bills.get(no)?.state !== 'WAIT_USER_CONFIRM') {
      ctx.error(res, 409, 'INVALID_REQUEST', 'no bill waiting for the member under this number')
      return true
    }
    const { answer } = await controls.confirmTransfer(no)
    ctx.reply(res, 200, { delivered: answer })
    return true
  }

  const controls = {
    /** The bill under `out_bill_no`, as the sandbox keeps it. */
    transfer: (outBillNo: string) => bills.get(outBillNo),
    /** Every create body received for `out_bill_no`, in order (faulted ones included). */
    transferRequests: (outBillNo: string) => requests.get(outBillNo) ?? [],
    /** What new bills are created as: WAIT_USER_CONFIRM (default) or ACCEPTED (then advanceTransfer). */
    answerTransfersWith(state: 'WAIT_USER_CONFIRM' | 'ACCEPTED') {
      answerWith = state
    },
    /** ACCEPTED / PROCESSING → WAIT_USER_CONFIRM: the funds are locked, the member may confirm. */
    advanceTransfer(outBillNo: string) {
      const t = bills.get(outBillNo)
      if (t && (t.state === 'ACCEPTED' || t.state === 'PROCESSING')) t.state = 'WAIT_USER_CONFIRM'
    },
    /** The next creates, in order, answer with these faults. */
    faultTransferCreates(...next: TransferCreateFault[]) {
      faults.push(...next)
    },
    /** The next queries, in order, answer with these faults (the bill itself is unchanged). */
    faultTransferQueries(...next: TransferQueryFault[]) {
      queryFaults.push(...next)
    },
    /**
     * The member confirms in the mini program: WAIT_USER_CONFIRM → TRANSFERING → SUCCESS (or FAIL
     * with `failReason`), and MCHTRANSFER.BILL.FINISHED is sent unless `deliver: false` (lost).
     */
    async confirmTransfer(outBillNo: string, o: { failReason?: string; deliver?: boolean } = {}) {
      const t = bills.get(outBillNo)
      if (t?.state !== 'WAIT_USER_CONFIRM')
        throw new Error(`sandbox pay: transfer ${outBillNo} is not waiting for the member`)
      t.state = 'TRANSFERING'
      return finish(outBillNo, o.failReason ? 'FAIL' : 'SUCCESS', o)
    },
    /** The bill fails (default OVERDUE_CLOSE) and its notification is sent unless `deliver: false`. */
    async failTransfer(outBillNo: string, o: { failReason?: string; deliver?: boolean } = {}) {
      const t = bills.get(outBillNo)
      if (!t || FINAL.includes(t.state))
        throw new Error(`sandbox pay: transfer ${outBillNo} is not open`)
      return finish(outBillNo, 'FAIL', { failReason: o.failReason ?? 'OVERDUE_CLOSE', ...o })
    },
    /** Bills not confirmed 24 h before `at` close: FAIL OVERDUE_CLOSE, each notified. */
    async expireTransfers(at: Date = new Date()) {
      const due = [...bills].filter(
        ([, t]) =>
          ['ACCEPTED', 'PROCESSING', 'WAIT_USER_CONFIRM'].includes(t.state) &&
          at.getTime() - t.createdAt.getTime() >= 24 * 3600_000,
      )
      return Promise.all(due.map(([no]) => finish(no, 'FAIL', { failReason: 'OVERDUE_CLOSE' })))
    },
    /** The bill's MCHTRANSFER.BILL.FINISHED as it stands (to deliver again: duplicates). */
    transferNotification: (outBillNo: string) => notification(outBillNo).notification,
    /** Waits for the notifications being delivered (after a cancel, for instance). */
    async transfersIdle() {
      while (deliveries.size > 0) await Promise.allSettled([...deliveries])
    },
  }

  return { api, control, controls }
}
