// fetch for the API: JSON in and out, bearer token, one refresh on 401 (rotating refresh token).
import { REASON_MESSAGES } from './messages'
import { loadSession, saveSession, sessionFrom, withLock, type Session, type TokenResponse } from './session'

export class ApiError extends Error {
  constructor(public status: number, public code: string, public detail: string, public body: unknown = null) {
    super(detail)
  }
}
/** No answer from the server (offline, timeout): the caller keeps its data and retries later. */
export class NetworkError extends Error {}
/** The session cannot be renewed: log in again. */
export class AuthExpired extends Error {}

export const API = '/api/v1'
const TIMEOUT_MS = 15_000

async function rawFetch(path: string, init: RequestInit): Promise<Response> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS)
  try {
    return await fetch(API + path, { ...init, signal: controller.signal, cache: 'no-store' })
  } catch {
    throw new NetworkError('网络不可用')
  } finally {
    clearTimeout(timer)
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  let body: { code?: string; detail?: string; reason?: string; message?: string } | null = null
  try {
    body = await response.json()
  } catch {
    /* not JSON */
  }
  const code = body?.code ?? body?.reason ?? `http_${response.status}`
  const detail = body?.detail ?? body?.message ?? REASON_MESSAGES[code] ?? `请求失败（${response.status}）`
  return new ApiError(response.status, code, detail, body)
}

// Requests of one page that all got a 401 share one refresh (Web Locks order the page and the
// service worker; this covers browsers without Web Locks, where parallel refreshes with the same
// token would look like token reuse to the server and end the login).
let refreshing: Promise<Session> | null = null

function refreshed(failedAccess: string): Promise<Session> {
  refreshing ??= refreshOnce(failedAccess).finally(() => {
    refreshing = null
  })
  return refreshing
}

async function refreshOnce(failedAccess: string): Promise<Session> {
  // Page and service worker may both see a 401: one refreshes, the other picks up its result.
  return withLock('hongyi-refresh', async () => {
    const current = await loadSession()
    if (!current || current.expired) throw new AuthExpired('请重新登录')
    if (current.access_token !== failedAccess) return current
    const response = await rawFetch('/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: current.refresh_token }),
    })
    if (response.status >= 400 && response.status < 500) {
      await saveSession({ ...current, expired: true })
      throw new AuthExpired('登录已过期，请重新登录')
    }
    if (!response.ok) throw await errorFrom(response)
    const next = sessionFrom((await response.json()) as TokenResponse)
    await saveSession(next)
    return next
  })
}

export interface RequestOptions {
  method?: string
  body?: unknown
  auth?: boolean
  /** Only as this user: a sync must never go out under another account that logged in meanwhile. */
  asUser?: number
}

/** Calls the API and returns the parsed body (null for 204). Throws ApiError, NetworkError or AuthExpired. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const { method = 'GET', body, auth = true, asUser } = options
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let session: Session | undefined
  if (auth) {
    session = await loadSession()
    if (!session || session.expired) throw new AuthExpired('请先登录')
    if (asUser !== undefined && session.user.id !== asUser) throw new AuthExpired('账号已切换')
    headers.Authorization = `Bearer ${session.access_token}`
  }
  const init: RequestInit = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }
  let response = await rawFetch(path, init)
  if (response.status === 401 && auth && session) {
    const renewed = await refreshed(session.access_token)
    if (asUser !== undefined && renewed.user.id !== asUser) throw new AuthExpired('账号已切换')
    headers.Authorization = `Bearer ${renewed.access_token}`
    response = await rawFetch(path, init)
  }
  if (response.status === 204) return null as T
  if (!response.ok) throw await errorFrom(response)
  return (await response.json()) as T
}

/** Like api() but returns the response body as a Blob (images). */
export async function apiBlob(path: string): Promise<Blob> {
  const session = await loadSession()
  if (!session || session.expired) throw new AuthExpired('请先登录')
  const get = (token: string) => rawFetch(path, { headers: { Authorization: `Bearer ${token}` } })
  let response = await get(session.access_token)
  if (response.status === 401) response = await get((await refreshed(session.access_token)).access_token)
  if (!response.ok) throw await errorFrom(response)
  return response.blob()
}

export function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false
}
