// App-wide reactive state and the sync triggers (online event, app start, button, Background Sync).
import { reactive } from 'vue'
import { clearUserCaches } from './db'
import { api } from './http'
import { countQueued, flush, onOutboxChange, SYNC_TAG, type FlushOutcome } from './outbox'
import { loadSession, saveSession, sessionFrom, type Session, type TokenResponse } from './session'
import { refreshSchedule } from './schedule'
import { refreshJwks } from './tokens'

export const state = reactive({
  session: undefined as Session | undefined,
  ready: false,
  online: typeof navigator === 'undefined' ? true : navigator.onLine,
  queued: 0,
  syncing: false,
  lastFlush: undefined as FlushOutcome | undefined,
  largeFont: false,
})

export async function reloadSession(): Promise<void> {
  state.session = await loadSession()
  await recount()
}

export async function recount(): Promise<void> {
  const userId = state.session?.user.id
  state.queued = userId == null ? 0 : await countQueued(userId)
}

let retryTimer: number | undefined

export async function syncNow(): Promise<FlushOutcome> {
  state.syncing = true
  try {
    const outcome = await flush()
    state.lastFlush = outcome
    if (outcome.kind === 'logged_out') await reloadSession()
    return outcome
  } finally {
    state.syncing = false
    await recount()
    scheduleRetry()
  }
}

/** A weak signal looks "online" but fails: while items wait, try again in a minute (and let the
 * browser's Background Sync try too) instead of waiting for an `online` event that never comes. */
function scheduleRetry(): void {
  if (typeof window === 'undefined') return
  window.clearTimeout(retryTimer)
  const outcome = state.lastFlush?.kind
  if (state.queued > 0 && (outcome === 'offline' || outcome === 'error')) {
    void requestBackgroundSync()
    retryTimer = window.setTimeout(() => void syncNow(), 60_000)
  }
}

/** Asks the service worker to sync when the connection is back, where Background Sync exists. */
export async function requestBackgroundSync(): Promise<void> {
  try {
    const registration = await navigator.serviceWorker?.ready
    const sync = (registration as ServiceWorkerRegistration & { sync?: { register(tag: string): Promise<void> } })?.sync
    await sync?.register(SYNC_TAG)
  } catch {
    /* not supported: the online event and app start cover it */
  }
}

export async function login(phone: string, password: string): Promise<void> {
  const tokens = await api<TokenResponse>('/auth/login', { method: 'POST', body: { phone, password }, auth: false })
  await startSession(tokens)
  await afterLogin()
}

/** A new login: another account's cached pages must not show (the outbox stays, by owner). */
async function startSession(tokens: TokenResponse): Promise<void> {
  const previous = await loadSession()
  if (!previous || previous.user.id !== tokens.user.id) await clearUserCaches()
  await saveSession(sessionFrom(tokens))
}

export async function activate(code: string, password: string): Promise<void> {
  const tokens = await api<TokenResponse>('/auth/activate', { method: 'POST', body: { code, password }, auth: false })
  await startSession(tokens)
  await afterLogin()
}

async function afterLogin(): Promise<void> {
  await reloadSession()
  void warmCaches()
  void syncNow()
}

/** Logs out. Queued items are sent first when the network allows; what is left stays on the phone
 * and syncs after the same account logs in again. Per-user caches are dropped. */
export async function logout(): Promise<void> {
  if (state.online && state.queued > 0) await syncNow()
  const session = await loadSession()
  if (session && !session.expired) {
    try {
      await api('/auth/logout', { method: 'POST', body: { refresh_token: session.refresh_token } })
    } catch {
      /* offline: the refresh token simply expires */
    }
  }
  await saveSession(undefined)
  await clearUserCaches()
  await reloadSession()
}

/** Keys and schedule for offline scanning; quietly keeps the old copies when offline. */
export async function warmCaches(): Promise<void> {
  try {
    await refreshJwks()
    if (state.session && !state.session.expired) await refreshSchedule()
  } catch {
    /* keep what is cached */
  }
}

let started = false
export async function startApp(): Promise<void> {
  if (started) return
  started = true
  await reloadSession()
  state.ready = true
  window.addEventListener('online', () => {
    state.online = true
    void syncNow()
    void warmCaches()
  })
  window.addEventListener('offline', () => {
    state.online = false
  })
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.queued > 0 && state.online) void syncNow()
  })
  onOutboxChange(() => void recount())
  // Network work waits until the first screen is drawn and the main thread is idle.
  whenIdle(() => {
    void navigator.storage?.persist?.().catch(() => false)
    void warmCaches()
    if (state.session) void syncNow()
  })
}

function whenIdle(task: () => void): void {
  const idle = (window as Window & { requestIdleCallback?: (cb: () => void, opts?: { timeout: number }) => number }).requestIdleCallback
  if (idle) idle(task, { timeout: 1500 })
  else window.setTimeout(task, 200)
}
