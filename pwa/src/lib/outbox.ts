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

const KEEP_FINISHED_MS = 30 * 86400_000

/** Forgets finished items older than 30 days (their results are on the server); queued ones stay. */
export async function pruneFinished(now = Date.now()): Promise<number> {
  const database = await db()
  const tx = database.transaction('outbox', 'readwrite')
  let removed = 0
  let cursor = await tx.store.index('by_created').openCursor(IDBKeyRange.upperBound(now - KEEP_FINISHED_MS))
  while (cursor) {
    if (cursor.value.state === 'done') {
      await cursor.delete()
      removed++
    }
    cursor = await cursor.continue()
  }
  await tx.done
  return removed
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

/** A refusal that will not change on retry (the item gets it as its result); anything else stays queued. */
function isFinal(error: ApiError): boolean {
  return [400, 403, 404, 409, 410, 413, 422].includes(error.status)
}

/** A visit record: the server answers 201 (new) or 200 (a replay of the same client_uuid). */
async function sendVisit(item: OutboxItem): Promise<CheckinResult & { client_uuid: string }> {
  const asUser = item.owner_id
  const visit = item.visit!
  const body: Record<string, unknown> = { client_uuid: item.client_uuid, visited_at: item.scanned_at, mode: visit.mode, content: visit.content }
  for (const field of ['problems', 'help_given', 'outcome'] as const) if (visit[field]) body[field] = visit[field]
  const answer = await api<VisitAnswer>(`/pairings/${visit.pairing_id}/visits`, { method: 'POST', body, asUser })
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
    const asUser = item.owner_id
    const result = item.channel === 'visit'
      ? await sendVisit(item)
      : item.channel === 'staff'
      ? await api<CheckinResult & { client_uuid: string }>('/checkins/staff', { method: 'POST', body: staffWireItem(item), asUser })
      : await api<CheckinResult & { client_uuid: string }>('/checkins', { method: 'POST', body: wireItem(item), asUser })
    await store([{ ...result, client_uuid: item.client_uuid }])
  } catch (error) {
    if (!(error instanceof ApiError) || !isFinal(error)) throw error
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
    const owner = session.user.id
    const queued = await queuedFor(owner)
    if (queued.length === 0) return { kind: 'nothing' }
    const own = queued.filter((i) => i.channel === 'self')
    const all: CheckinResult[] = []
    let waiting = 0 // items the server could not take now (5xx, 429): still queued, retried later
    try {
      for (let start = 0; start < own.length; start += BATCH) {
        const batch = own.slice(start, start + BATCH)
        try {
          const response = await api<SyncResponse>('/checkins/sync', { method: 'POST', body: { items: batch.map(wireItem) }, asUser: owner })
          all.push(...(await store(response.results)))
        } catch (error) {
          if (!(error instanceof ApiError)) throw error
          if (isFinal(error)) {
            for (const item of batch) await sendAlone(item).catch((e) => { if (e instanceof ApiError) waiting++; else throw e })
          } else waiting += batch.length
        }
        announce()
      }
      // Staff check-ins and visits go one by one; one that fails for now does not hold up the rest.
      for (const item of queued.filter((i) => i.channel !== 'self')) {
        try {
          await sendAlone(item)
        } catch (error) {
          if (!(error instanceof ApiError)) throw error
          waiting++
        }
        announce()
      }
    } catch (error) {
      announce()
      if (error instanceof NetworkError) return { kind: 'offline' }
      if (error instanceof AuthExpired) return { kind: 'logged_out' }
      return { kind: 'error', message: error instanceof Error ? error.message : String(error) }
    }
    await pruneFinished()
    if (waiting) return { kind: 'error', message: `${waiting} 条暂未提交成功，稍后自动重试` }
    return { kind: 'done', sent: queued.length, results: all }
  })
}
