// The login session lives in IndexedDB so the service worker can sync with it too.
import { kvGet, kvSet } from './db'

export interface Grant { role: string; org_id: number | null; station_id: number | null; scope_name: string }
export interface User {
  id: number
  phone: string
  display_name: string
  member_id: number | null
  org_id: number | null
  org_name: string | null
  roles: string[]
  grants: Grant[]
}

export interface Session {
  access_token: string
  refresh_token: string
  access_expires_ms: number
  user: User
  /** The refresh token was refused: the member must log in again; their outbox is kept. */
  expired?: boolean
}

export interface TokenResponse {
  access_token: string
  refresh_token: string
  token_type: string
  expires_in: number
  user: User
}

export function sessionFrom(tokens: TokenResponse): Session {
  return {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    access_expires_ms: Date.now() + tokens.expires_in * 1000,
    user: tokens.user,
  }
}

export async function loadSession(): Promise<Session | undefined> {
  return kvGet<Session>('session')
}

export async function saveSession(session: Session | undefined): Promise<void> {
  await kvSet('session', session)
}

/** Runs `task` holding a lock shared by every tab and the service worker (Web Locks where present). */
export async function withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks
  if (locks?.request) return locks.request(name, task) as Promise<T>
  return task()
}
