// Outbox logic without a browser: fake IndexedDB, a scripted fetch.
import 'fake-indexeddb/auto'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { db } from '../src/lib/db'
import { countQueued, enqueue, flush, queuedFor } from '../src/lib/outbox'
import { loadSession, saveSession, type Session } from '../src/lib/session'
import { extractToken, judgeTime, Refused } from '../src/lib/tokens'
import { localIso } from '../src/lib/time'

const session = (userId = 7): Session => ({
  access_token: 'access-1', refresh_token: 'refresh-1', access_expires_ms: Date.now() + 900_000,
  user: { id: userId, phone: '13900000001', display_name: '王建国', member_id: 100 + userId, org_id: 1, org_name: '支部', roles: ['member'], grants: [] },
})

type Handler = (url: string, init: RequestInit) => Response | Promise<Response>
function mockFetch(handler: Handler) {
  const calls: { url: string; body: any; auth: string | undefined }[] = []
  vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
    calls.push({ url, body: init.body ? JSON.parse(init.body as string) : null, auth: (init.headers as Record<string, string>)?.Authorization })
    return handler(url, init)
  })
  return calls
}
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
const accepted = (items: { client_uuid: string }[]) =>
  json({ results: items.map((i) => ({ client_uuid: i.client_uuid, status: 'accepted', reason: null, message: '签到成功', points_awarded: 1, checkin_id: 1, activity_id: 1, station_id: 1 })) })

async function queue(n: number, ownerId = 7, start = Date.parse('2026-11-21T09:00:00+08:00')) {
  for (let i = 0; i < n; i++) {
    await enqueue({ client_uuid: `uuid-${ownerId}-${i}`, owner_id: ownerId, channel: 'self', token: 'a.b.c', scanned_at: new Date(start + i * 1000).toISOString(), kind: 'in', label: '活动' })
  }
}

beforeEach(async () => {
  const database = await db()
  await database.clear('outbox')
  await database.clear('kv')
  await saveSession(session())
  vi.unstubAllGlobals()
})

describe('flush', () => {
  it('sends queued items oldest first, 500 per request, and stores every result', async () => {
    await queue(501)
    const calls = mockFetch((_url, init) => accepted(JSON.parse(init.body as string).items))
    const outcome = await flush()
    expect(outcome.kind).toBe('done')
    expect(calls.map((c) => c.body.items.length)).toEqual([500, 1])
    expect(calls[0].body.items[0].client_uuid).toBe('uuid-7-0')
    expect(await countQueued(7)).toBe(0)
    const item = await (await db()).get('outbox', 'uuid-7-3')
    expect(item?.result?.status).toBe('accepted')
  })

  it('keeps everything queued when the network is down', async () => {
    await queue(3)
    mockFetch(() => { throw new TypeError('Failed to fetch') })
    expect((await flush()).kind).toBe('offline')
    expect(await countQueued(7)).toBe(3)
  })

  it('renews an expired access token once and retries', async () => {
    await queue(1)
    const calls = mockFetch((url, init) => {
      if (url.endsWith('/auth/refresh')) return json({ ...session(), access_token: 'access-2', refresh_token: 'refresh-2', token_type: 'bearer', expires_in: 900 })
      const auth = (init.headers as Record<string, string>).Authorization
      return auth === 'Bearer access-2' ? accepted(JSON.parse(init.body as string).items) : json({ code: 'unauthorized', detail: '请登录' }, 401)
    })
    expect((await flush()).kind).toBe('done')
    expect(calls.map((c) => c.url.replace('/api/v1', ''))).toEqual(['/checkins/sync', '/auth/refresh', '/checkins/sync'])
    expect((await loadSession())?.refresh_token).toBe('refresh-2')
  })

  it('keeps the queue when the session cannot be renewed, and marks the session expired', async () => {
    await queue(2)
    mockFetch(() => json({ code: 'unauthorized', detail: '登录已失效' }, 401))
    expect((await flush()).kind).toBe('logged_out')
    expect(await countQueued(7)).toBe(2)
    expect((await loadSession())?.expired).toBe(true)
  })

  it('never sends another user\'s queued items', async () => {
    await queue(2, 7)
    await queue(3, 8)
    const calls = mockFetch((_url, init) => accepted(JSON.parse(init.body as string).items))
    await flush()
    expect(calls[0].body.items.map((i: { client_uuid: string }) => i.client_uuid)).toEqual(['uuid-7-0', 'uuid-7-1'])
    expect((await queuedFor(8)).length).toBe(3)
  })

  it('isolates items when the server refuses the whole batch', async () => {
    await queue(2)
    const calls = mockFetch((url, init) => {
      if (url.endsWith('/checkins/sync')) return json({ code: 'validation_error', detail: '请求格式错误' }, 400)
      const item = JSON.parse(init.body as string)
      return item.client_uuid.endsWith('0')
        ? json({ client_uuid: item.client_uuid, status: 'accepted', reason: null, message: '签到成功', points_awarded: 1, checkin_id: 3, activity_id: 1, station_id: 1 })
        : json({ client_uuid: item.client_uuid, status: 'rejected', reason: 'malformed', message: '二维码内容无法识别', points_awarded: 0, checkin_id: null, activity_id: null, station_id: null }, 422)
    })
    await flush()
    expect(calls.length).toBe(3)
    const database = await db()
    expect((await database.get('outbox', 'uuid-7-0'))?.result?.status).toBe('accepted')
    expect((await database.get('outbox', 'uuid-7-1'))?.result?.reason).toBe('malformed')
    expect(await countQueued(7)).toBe(0)
  })
})

describe('staff and visit items', () => {
  it('sends staff check-ins one by one and visits to their pairing, keeping each result', async () => {
    await enqueue({ client_uuid: 'staff-card-1', owner_id: 7, channel: 'staff', token: 'm.b.c', activity_id: 5, scanned_at: new Date().toISOString(), kind: 'in', label: '党员证' })
    await enqueue({ client_uuid: 'staff-hand-1', owner_id: 7, channel: 'staff', token: '', member_id: 42, activity_id: 5, scanned_at: new Date().toISOString(), kind: 'out', label: '张三' })
    await enqueue({ client_uuid: 'visit-0001', owner_id: 7, channel: 'visit', token: '', scanned_at: new Date().toISOString(), kind: 'in', label: '走访', visit: { pairing_id: 9, mode: 'home', content: '看望' } })
    const calls = mockFetch((url, init) => {
      const body = JSON.parse(init.body as string)
      if (url.endsWith('/pairings/9/visits')) return json({ id: 77, status: 'pending' }, 201)
      return json({ client_uuid: body.client_uuid, status: 'accepted', reason: null, message: '签到成功', points_awarded: 1, checkin_id: 1, activity_id: 5, station_id: 1 })
    })
    expect((await flush()).kind).toBe('done')
    const byUrl = Object.fromEntries(calls.map((c) => [c.body.client_uuid, c]))
    expect(byUrl['staff-card-1'].url).toBe('/api/v1/checkins/staff')
    expect(byUrl['staff-card-1'].body.member_token).toBe('m.b.c')
    expect(byUrl['staff-hand-1'].body).toMatchObject({ member_id: 42, kind: 'out', activity_id: 5 })
    expect(byUrl['staff-hand-1'].body.member_token).toBeUndefined()
    expect(byUrl['visit-0001'].url).toBe('/api/v1/pairings/9/visits')
    expect(byUrl['visit-0001'].body).toMatchObject({ mode: 'home', content: '看望' })
    const visit = await (await db()).get('outbox', 'visit-0001')
    expect(visit?.result?.status).toBe('pending_review')
    expect(await countQueued(7)).toBe(0)
  })
})

describe('robustness', () => {
  it('a staff item the server cannot take now (5xx) stays queued and does not hold up the rest', async () => {
    await enqueue({ client_uuid: 'staff-broken', owner_id: 7, channel: 'staff', token: 'm.b.c', activity_id: 5, scanned_at: new Date().toISOString(), kind: 'in', label: '党员证' })
    await queue(2)
    mockFetch((url, init) => {
      if (url.endsWith('/checkins/staff')) return json({ code: 'internal', detail: '服务器错误' }, 503)
      return accepted(JSON.parse(init.body as string).items)
    })
    const outcome = await flush()
    expect(outcome.kind).toBe('error')
    expect((await queuedFor(7)).map((i) => i.client_uuid)).toEqual(['staff-broken'])
  })

  it('stops when another account logs in meanwhile: nothing goes out under the wrong token', async () => {
    await queue(1)
    await enqueue({ client_uuid: 'staff-later', owner_id: 7, channel: 'staff', token: 'm.b.c', activity_id: 5, scanned_at: new Date().toISOString(), kind: 'in', label: '党员证' })
    const calls = mockFetch(async (_url, init) => {
      await saveSession(session(8)) // someone else logs in while the first request is in flight
      return accepted(JSON.parse(init.body as string).items)
    })
    expect((await flush()).kind).toBe('logged_out')
    expect(calls.length).toBe(1)
    expect((await queuedFor(7)).map((i) => i.client_uuid)).toEqual(['staff-later'])
  })
})

describe('housekeeping', () => {
  it('forgets finished items after 30 days and never a queued one', async () => {
    const old = Date.now() - 31 * 86400_000
    const database = await db()
    await database.put('outbox', { client_uuid: 'old-done', owner_id: 7, channel: 'self', token: 'a.b.c', scanned_at: '', kind: 'in', label: '', state: 'done', created_ms: old })
    await database.put('outbox', { client_uuid: 'old-queued', owner_id: 7, channel: 'self', token: 'a.b.c', scanned_at: '', kind: 'in', label: '', state: 'queued', created_ms: old })
    await database.put('outbox', { client_uuid: 'new-done', owner_id: 7, channel: 'self', token: 'a.b.c', scanned_at: '', kind: 'in', label: '', state: 'done', created_ms: Date.now() })
    const { pruneFinished } = await import('../src/lib/outbox')
    expect(await pruneFinished()).toBe(1)
    expect((await database.getAllKeys('outbox')).sort()).toEqual(['new-done', 'old-queued'])
  })
})

describe('token refresh', () => {
  it('parallel requests that all get a 401 share one refresh (no Web Locks here)', async () => {
    const calls = mockFetch((url, init) => {
      if (url.endsWith('/auth/refresh')) return json({ ...session(), access_token: 'access-2', refresh_token: 'refresh-2', token_type: 'bearer', expires_in: 900 })
      const auth = (init.headers as Record<string, string>).Authorization
      return auth === 'Bearer access-2' ? json({ ok: true }) : json({ code: 'unauthorized', detail: '请登录' }, 401)
    })
    const { api } = await import('../src/lib/http')
    await Promise.all([api('/me'), api('/me/points'), api('/me/checkins')])
    expect(calls.filter((c) => c.url.endsWith('/auth/refresh')).length).toBe(1)
  })
})

describe('tokens and time', () => {
  it('extracts the token from a poster URL or takes it bare', () => {
    expect(extractToken('https://hy.example.cn/q/aa.bb.cc?from=wechat')).toBe('aa.bb.cc')
    expect(extractToken('  aa.bb.cc ')).toBe('aa.bb.cc')
    expect(() => extractToken('https://example.com/not-ours')).toThrow(Refused)
  })

  it('judges the activity window and kiosk age at scan time', () => {
    expect(() => judgeTime({ t: 'ac', aid: 1, sid: 1, nbf: 100, exp: 200 }, 150)).not.toThrow()
    expect(() => judgeTime({ t: 'ac', aid: 1, sid: 1, nbf: 100, exp: 200 }, 201)).toThrow('不在签到时间内')
    expect(() => judgeTime({ t: 'rk', sid: 1, iat: 1000 }, 1061)).toThrow(Refused)
    expect(() => judgeTime({ t: 'mb', mid: 1, v: 1 }, 0)).toThrow('党员证')
  })

  it('writes scanned_at with the phone\'s offset', () => {
    expect(localIso(new Date('2026-11-21T01:02:03.004Z'))).toMatch(/^2026-11-2\dT\d\d:02:03\.004[+-]\d\d:\d\d$/)
  })
})
