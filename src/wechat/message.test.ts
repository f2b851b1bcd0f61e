import { describe, expect, it } from 'vitest'
import { parseJson, parseXml, WechatFormatError } from './codec.js'
import { dedupeKey, type InboundMessage, toInboundMessage } from './message.js'

const head = (type: string) =>
  `<ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1610969468</CreateTime><MsgType><![CDATA[${type}]]></MsgType>`
const xml = (type: string, body: string) =>
  toInboundMessage(parseXml(`<xml>${head(type)}${body}</xml>`))
const event = (name: string, body = '') => xml('event', `<Event><![CDATA[${name}]]></Event>${body}`)
const strip = ({ raw: _, ...m }: InboundMessage) => m

describe('typed messages (protocol reference §2)', () => {
  it('types every ordinary message', () => {
    expect(
      strip(
        xml(
          'text',
          '<Content><![CDATA[签到 <b>&amp;]]></Content><MsgId>6054768590064713728</MsgId>',
        ),
      ),
    ).toEqual({
      toUserName: 'gh_123456789abc',
      fromUserName: 'o1',
      createTime: 1610969468,
      type: 'text',
      content: '签到 <b>&amp;',
      msgId: '6054768590064713728',
      msgDataId: undefined,
      idx: undefined,
    })
    expect(
      xml(
        'image',
        '<PicUrl><![CDATA[http://p]]></PicUrl><MediaId><![CDATA[m1]]></MediaId><MsgId>1</MsgId>',
      ),
    ).toMatchObject({ type: 'image', picUrl: 'http://p', mediaId: 'm1' })
    expect(
      xml(
        'voice',
        '<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>1234567890123456</MsgId>',
      ),
    ).toMatchObject({
      type: 'voice',
      format: 'amr',
      recognition: '腾讯微信团队',
      msgId: '1234567890123456',
    })
    expect(
      xml(
        'video',
        '<MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>2</MsgId>',
      ),
    ).toMatchObject({ type: 'video', thumbMediaId: 't' })
    expect(
      xml(
        'shortvideo',
        '<MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>3</MsgId>',
      ),
    ).toMatchObject({ type: 'shortvideo' })
    expect(
      xml(
        'location',
        '<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[广州]]></Label><MsgId>4</MsgId>',
      ),
    ).toMatchObject({
      type: 'location',
      latitude: 23.134521,
      longitude: 113.358803,
      scale: 20,
      label: '广州',
    })
    expect(
      xml(
        'link',
        '<Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><Url><![CDATA[http://u]]></Url><MsgId>5</MsgId>',
      ),
    ).toMatchObject({ type: 'link', title: 't', url: 'http://u' })
    expect(xml('miniprogrampage', '<MsgId>6</MsgId>')).toMatchObject({
      type: 'unknown',
      msgType: 'miniprogrampage',
      msgId: '6',
    })
  })

  it('types every event and normalises QR scenes', () => {
    expect(
      event(
        'subscribe',
        '<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>',
      ),
    ).toMatchObject({
      event: 'subscribe',
      scene: '123123',
      eventKey: 'qrscene_123123',
      ticket: 'TICKET',
    })
    expect(event('subscribe')).toMatchObject({ event: 'subscribe', scene: null, eventKey: null })
    expect(event('subscribe', '<EventKey><![CDATA[]]></EventKey>')).toMatchObject({ scene: null })
    expect(event('unsubscribe')).toMatchObject({ type: 'event', event: 'unsubscribe' })
    expect(
      event('SCAN', '<EventKey><![CDATA[spring]]></EventKey><Ticket><![CDATA[T]]></Ticket>'),
    ).toMatchObject({ event: 'SCAN', scene: 'spring' })
    expect(
      event(
        'LOCATION',
        '<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>',
      ),
    ).toMatchObject({ latitude: 23.137466, precision: 119.38504 })
    expect(event('CLICK', '<EventKey><![CDATA[签到]]></EventKey>')).toMatchObject({
      event: 'CLICK',
      eventKey: '签到',
    })
    expect(
      event('VIEW', '<EventKey><![CDATA[http://x]]></EventKey><MenuId>1</MenuId>'),
    ).toMatchObject({ event: 'VIEW', menuId: '1' })
    expect(
      event(
        'view_miniprogram',
        '<EventKey><![CDATA[pages/index/index]]></EventKey><MenuId><![CDATA[MENUID]]></MenuId>',
      ),
    ).toMatchObject({ event: 'view_miniprogram', eventKey: 'pages/index/index', menuId: 'MENUID' })
    expect(
      event(
        'TEMPLATESENDJOBFINISH',
        '<MsgID>200163836</MsgID><Status><![CDATA[failed: system failed]]></Status>',
      ),
    ).toMatchObject({ msgId: '200163836', status: 'failed: system failed' })
    expect(event('scancode_push', '<EventKey><![CDATA[k]]></EventKey>')).toMatchObject({
      type: 'other_event',
      event: 'scancode_push',
      eventKey: 'k',
    })
  })

  it('reads subscribe-message lists whether List occurs once or many times', () => {
    const one = event(
      'subscribe_msg_sent_event',
      '<SubscribeMsgSentEvent><List><TemplateId><![CDATA[VRR0]]></TemplateId><MsgID>1700827132819554304</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent>',
    )
    expect(one).toMatchObject({
      items: [
        {
          templateId: 'VRR0',
          msgId: '1700827132819554304',
          errorCode: '0',
          errorStatus: 'success',
        },
      ],
    })
    const two = event(
      'subscribe_msg_popup_event',
      '<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[a]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List><List><TemplateId><![CDATA[b]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>',
    )
    expect(two).toMatchObject({
      items: [
        { templateId: 'a', status: 'accept', popupScene: '2' },
        { templateId: 'b', status: 'reject' },
      ],
    })
    const json = toInboundMessage(
      parseJson(
        '{"ToUserName":"gh","FromUserName":"o","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_change_event","SubscribeMsgChangeEvent":{"List":{"TemplateId":"t","SubscribeStatusString":"reject"}}}',
      ),
    )
    expect(json).toMatchObject({ items: [{ templateId: 't', status: 'reject' }] })
  })

  it('keeps 64-bit ids exact in JSON pushes', () => {
    const m = toInboundMessage(
      parseJson(
        '{"ToUserName":"gh","FromUserName":"o","CreateTime":1409735668,"MsgType":"text","Content":"a: 12345678901234567890","MsgId":6054768590064713728}',
      ),
    )
    expect(m).toMatchObject({
      msgId: '6054768590064713728',
      content: 'a: 12345678901234567890',
      createTime: 1409735668,
    })
  })

  it('derives dedupe keys: MsgId for messages, sender+time+event for events', () => {
    expect(dedupeKey(xml('text', '<Content>x</Content><MsgId>42</MsgId>'))).toBe('m:42')
    expect(dedupeKey(event('subscribe', '<EventKey><![CDATA[qrscene_1]]></EventKey>'))).toBe(
      'e:o1:1610969468:subscribe:qrscene_1',
    )
    expect(
      dedupeKey(event('TEMPLATESENDJOBFINISH', '<MsgID>7</MsgID><Status>success</Status>')),
    ).toBe('e:o1:1610969468:TEMPLATESENDJOBFINISH:7')
    expect(dedupeKey(xml('hologram', ''))).toBe('u:o1:1610969468:hologram')
  })

  it('refuses pushes without the common header', () => {
    expect(() => toInboundMessage(parseXml('<xml><MsgType>text</MsgType></xml>'))).toThrow(
      WechatFormatError,
    )
    expect(() =>
      toInboundMessage(parseXml(`<xml>${head('text').replace('1610969468', 'soon')}</xml>`)),
    ).toThrow(WechatFormatError)
  })
})
