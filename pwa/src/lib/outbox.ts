// The outbox: every scan is stored here first and sent later, by the page or the service worker.
// Sending is idempotent (client_uuid), so a replay from both at once cannot double a check-in.
import { db, type CheckinResult, type OutboxItem } from './db'
import { api, ApiError, AuthExpired, NetworkError } from './http'
import { loadSession, withLock } from './session'

export const SYNC_TAG = 'hongyi-outbox'
const BATCH = 500 // the server's limit per sync request
const channelName = 'hongyi-outbox'

function announce(): void {
  try {
    const channel = new BroadcastChannel(channelName)
    channel.postMessage('changed')
    channel.close()
  } catch {
    /* BroadcastChannel missing: the page polls on its own events */
  }
}

/** Calls `listener` whenever any tab or the service worker changed the outbox. */
export function onOutboxChange(listener: () => void): () => void {
  try {
    const channel = new BroadcastChannel(channelName)
    channel.onmessage = () => listener()
    return () => channel.close()
  } catch {
    return () => undefined
  }
}

export async function enqueue(item: Omit<OutboxItem, 'state' | 'created_ms'>): Promise<OutboxItem> {
  const stored: OutboxItem = { ...item, state: 'queued', created_ms: Date.now() }
  await (await db()).put('outbox', stored)
  announce()
  return stored
}

export async function getItem(clientUuid: string): Promise<OutboxItem | undefined> {
  return (await db()).get('outbox', clientUuid)
}

export async function queuedFor(ownerId: number): Promise<OutboxItem[]> {
  const items = await (await db()).getAllFromIndex('outbox', 'by_owner_state', [ownerId, 'queued'])
  return items.sort((a, b) => Date.parse(a.scanned_at) - Date.parse(b.scanned_at))
}

export async function countQueued(ownerId: number, channel?: OutboxItem['channel']): Promise<number> {
  if (!channel) return (await db()).countFromIndex('outbox', 'by_owner_state', [ownerId, 'queued'])
  return (await queuedFor(ownerId)).filter((i) => i.channel === channel).length
}

/** The user's items, newest first (queued and finished). */
export async function recentFor(ownerId: number, limit = 50, channel: OutboxItem['channel'] = 'self'): Promise<OutboxItem[]> {
  const all = await (await db()).getAllFromIndex('outbox', 'by_created')
  return all.filter((i) => i.owner_id === ownerId && i.channel === channel).reverse().slice(0, limit)
}

export type FlushOutcome =
  | { kind: 'done'; sent: number; results: CheckinResult[] }
  | { kind: 'nothing' }
  | { kind: 'offline' }
  | { kind: 'logged_out' }
  | { kind: 'error'; message: string }

interface SyncResponse {
  results: (CheckinResult & { client_uuid: string })[]
}

function wireItem(item: OutboxItem) {
  const wire: Record<string, unknown> = {
    client_uuid: item.client_uuid,
    token: item.token,
    scanned_at: item.scanned_at,
    kind: item.kind,
  }
  if (item.activity_id !== undefined) wire.activity_id = item.activity_id
  return wire
}

async function store(results: SyncResponse['results']): Promise<CheckinResult[]> {
  const database = await db()
  const tx = database.transaction('outbox', 'readwrite')
  const now = Date.now()
  const stored: CheckinResult[] = []
  for (const result of results) {
    const item = await tx.store.get(result.client_uuid)
    if (!item) continue
    const { client_uuid: _ignored, ...rest } = result
    item.state = 'done'
    item.result = rest
    item.synced_ms = now
    await tx.store.put(item)
    stored.push(rest)
  }
  await tx.done
  return stored
}

function staffWireItem(item: OutboxItem) {
  const wire: Record<string, unknown> = {
    client_uuid: item.client_uuid,
    activity_id: item.activity_id,
    scanned_at: item.scanned_at,
    kind: item.kind,
  }
  if (item.member_id !== undefined) wire.member_id = item.member_id
  else wire.member_token = item.token
  return wire
}

interface VisitAnswer { id: number; status: string }

/** A visit record: the server answers 201 (new) or 200 (a replay of the same client_uuid). */
async function sendVisit(item: OutboxItem): Promise<CheckinResult & { client_uuid: string }> {
  const visit = item.visit!
  const body: Record<string, unknown> = { client_uuid: item.client_uuid, visited_at: item.scanned_at, mode: visit.mode, content: visit.content }
  if (visit.help_given) body.help_given = visit.help_given
  const answer = await api<VisitAnswer>(`/pairings/${visit.pairing_id}/visits`, { method: 'POST', body })
  const verified = answer.status === 'approved'
  return {
    client_uuid: item.client_uuid, status: verified ? 'accepted' : 'pending_review', reason: null,
    message: verified ? '走访已核实' : '走访记录已提交，等待工作人员核实', points_awarded: 0,
    checkin_id: answer.id, activity_id: null, station_id: null,
  }
}

/**
 * Sends one item alone: staff check-ins and visits (one per request), and self items the server
 * refused as a whole batch (4xx), to isolate the bad one.
 */
async function sendAlone(item: OutboxItem): Promise<void> {
  try {
    const result = item.channel === 'visit'
      ? await sendVisit(item)
      : item.channel === 'staff'
      ? await api<CheckinResult & { client_uuid: string }>('/checkins/staff', { method: 'POST', body: staffWireItem(item) })
      : await api<CheckinResult & { client_uuid: string }>('/checkins', { method: 'POST', body: wireItem(item) })
    await store([{ ...result, client_uuid: item.client_uuid }])
  } catch (error) {
    if (!(error instanceof ApiError) || error.status >= 500 || error.status === 429) throw error
    const body = error.body as (CheckinResult & { client_uuid?: string }) | null
    const result: CheckinResult = body && 'status' in body && body.status
      ? { ...body }
      : { status: 'rejected', reason: error.code, message: error.detail, points_awarded: 0, checkin_id: null, activity_id: null, station_id: null }
    await store([{ ...result, client_uuid: item.client_uuid }])
  }
}

/**
 * Sends the logged-in member's queued items (oldest scan first, 500 per request) and stores each
 * result. Only one flush runs at a time across tabs and the service worker.
 */
export async function flush(): Promise<FlushOutcome> {
  return withLock('hongyi-flush', async () => {
    const session = await loadSession()
    if (!session || session.expired) return { kind: 'logged_out' }
    const queued = await queuedFor(session.user.id)
    if (queued.length === 0) return { kind: 'nothing' }
    const own = queued.filter((i) => i.channel === 'self')
    const all: CheckinResult[] = []
    try {
      for (const item of queued.filter((i) => i.channel !== 'self')) {
        await sendAlone(item)
        announce()
      }
      for (let start = 0; start < own.length; start += BATCH) {
        const batch = own.slice(start, start + BATCH)
        try {
          const response = await api<SyncResponse>('/checkins/sync', { method: 'POST', body: { items: batch.map(wireItem) } })
          all.push(...(await store(response.results)))
        } catch (error) {
          if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
            for (const item of batch) await sendAlone(item)
          } else {
            throw error
          }
        }
        announce()
      }
    } catch (error) {
      announce()
      if (error instanceof NetworkError) return { kind: 'offline' }
      if (error instanceof AuthExpired) return { kind: 'logged_out' }
      return { kind: 'error', message: error instanceof Error ? error.message : String(error) }
    }
    return { kind: 'done', sent: queued.length, results: all }
  })
}
