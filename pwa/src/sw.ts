/// <reference lib="webworker" />
// Service worker: precached app shell (opens with no network), SPA fallback for deep links
// such as /q/{token}, and Background Sync of the check-in outbox.
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching'
import { NavigationRoute, registerRoute } from 'workbox-routing'
import { flush, SYNC_TAG } from './lib/outbox'

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: Array<{ url: string; revision: string | null }> }

precacheAndRoute(self.__WB_MANIFEST)
cleanupOutdatedCaches()
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html'), { denylist: [/^\/api\//, /^\/schema/] }))

// A new version waits until the member taps "更新" (registerType: prompt).
self.addEventListener('message', (event) => {
  if (event.data?.type === 'SKIP_WAITING') void self.skipWaiting()
})
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()))

interface SyncEvent extends ExtendableEvent { tag: string }
self.addEventListener('sync', (event) => {
  const sync = event as SyncEvent
  if (sync.tag !== SYNC_TAG) return
  sync.waitUntil(
    flush().then((outcome) => {
      // Throwing asks the browser to retry later.
      if (outcome.kind === 'offline' || outcome.kind === 'error') throw new Error(outcome.kind)
    }),
  )
})
