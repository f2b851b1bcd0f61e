/**
 * The benches' signed text pushes: `count` of them, prepared before a measurement starts, each with
 * a new MsgId (never answered as a WeChat retry).
 */
import { nextMsgId, type PreparedPush, type Pusher } from '../src/sandbox/pusher.js'

export interface TextPushes {
  count: number
  content: string
  /** Senders are `${sender}${i % senders}`: pushes from a fixed set of members. */
  sender: string
  senders: number
  /** The first push's index (a run continuing where its previous pushes stopped). */
  offset?: number
}

/** @example await textPushes(wx, { count: 1000, content: '帮助', sender: 'o_bench_', senders: 5000 }) */
export async function textPushes(wx: Pusher, o: TextPushes): Promise<PreparedPush[]> {
  const out: PreparedPush[] = []
  const from = o.offset ?? 0
  for (let i = from; i < from + o.count; i++)
    out.push(
      await wx.prepare({
        FromUserName: `${o.sender}${i % o.senders}`,
        CreateTime: Math.floor(Date.now() / 1000),
        MsgType: 'text',
        Content: o.content,
        MsgId: BigInt(nextMsgId()),
      }),
    )
  return out
}
