// The activities a member can check in to, cached so a station poster can be resolved offline.
import { api, NetworkError } from './http'
import { kvGet, kvSet } from './db'

export interface Activity {
  id: number
  type: string
  title: string
  description: string
  station_id: number
  station_name: string
  org_id: number
  org_name: string
  starts_at: string
  ends_at: string
  checkin_opens_at: string
  checkin_closes_at: string
  required: boolean
  records_hours: boolean
  capacity: number | null
  status: string
  checked_in: number
}

interface CachedSchedule { activities: Activity[]; fetched_ms: number }
interface StationBrief { id: number; name: string }

export async function cachedSchedule(): Promise<Activity[]> {
  return (await kvGet<CachedSchedule>('schedule'))?.activities ?? []
}

/** Activities from a week back to the future; falls back to the cache offline. */
export async function refreshSchedule(): Promise<Activity[]> {
  const since = new Date(Date.now() - 7 * 86400_000).toISOString()
  try {
    const activities = await api<Activity[]>(`/activities?since=${encodeURIComponent(since)}&limit=500`)
    await kvSet('schedule', { activities, fetched_ms: Date.now() } satisfies CachedSchedule)
    const stations = await api<StationBrief[]>('/stations')
    await kvSet('stations', stations.map((s) => ({ id: s.id, name: s.name })))
    return activities
  } catch (error) {
    if (error instanceof NetworkError) return cachedSchedule()
    throw error
  }
}

export function isOpenAt(activity: Activity, at: Date): boolean {
  if (activity.status === 'cancelled') return false
  return Date.parse(activity.checkin_opens_at) <= at.getTime() && at.getTime() <= Date.parse(activity.checkin_closes_at)
}

/**
 * The cached schedule, refreshed first when it is older than `maxAgeMs` and the network answers
 * within `waitMs` (a first scan right after login, or a new activity since the last visit).
 */
export async function freshSchedule(maxAgeMs = 5 * 60_000, waitMs = 2000): Promise<Activity[]> {
  const cached = await kvGet<CachedSchedule>('schedule')
  if (cached && Date.now() - cached.fetched_ms < maxAgeMs) return cached.activities
  if (typeof navigator !== 'undefined' && navigator.onLine === false) return cached?.activities ?? []
  const timeout = new Promise<Activity[]>((resolve) => setTimeout(() => resolve(cached?.activities ?? []), waitMs))
  return Promise.race([refreshSchedule().catch(() => cached?.activities ?? []), timeout])
}

export async function openAtStation(stationId: number, at: Date): Promise<Activity[]> {
  return (await freshSchedule())
    .filter((a) => a.station_id === stationId && isOpenAt(a, at))
    .sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at) || a.id - b.id)
}

export async function findActivity(id: number): Promise<Activity | undefined> {
  return (await cachedSchedule()).find((a) => a.id === id)
}

export async function stationName(stationId: number): Promise<string> {
  const station = ((await kvGet<StationBrief[]>('stations')) ?? []).find((s) => s.id === stationId)
  const hit = (await cachedSchedule()).find((a) => a.station_id === stationId)
  return station?.name ?? hit?.station_name ?? `服务站 ${stationId}`
}
