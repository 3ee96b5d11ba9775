// Shared by the scanner and the /q/{token} deep link: run a decoded text through the scan flow,
// hold the outcome on screen, ask which activity when a station has several, trigger sync.
import { computed, nextTick, ref } from 'vue'
import { useRouter } from 'vue-router'
import type { OutboxItem } from './db'
import { metrics, record } from './metrics'
import { handleScan, resolveChoice, type PendingChoice } from './scanflow'
import { recount, requestBackgroundSync, state, syncNow } from './store'
import { shortTime } from './time'

interface Outcome { item?: OutboxItem; refused?: { reason: string; message: string } }

export function useScanHandler(kind: () => 'in' | 'out') {
  const router = useRouter()
  const busy = ref(false)
  const outcome = ref<Outcome | null>(null)
  const choice = ref<PendingChoice | null>(null)
  const hasOutcome = computed(() => outcome.value !== null || choice.value !== null)
  const choiceActions = computed(() =>
    (choice.value?.options ?? []).map((a) => ({ name: a.title, subname: `${shortTime(a.starts_at)} – ${shortTime(a.ends_at)}`, activity: a })),
  )

  async function shown(started: number) {
    await nextTick()
    requestAnimationFrame(() => record(metrics.feedbackMs, performance.now() - started))
  }

  async function afterQueued(item: OutboxItem) {
    outcome.value = { item }
    await recount()
    if (state.online) void syncNow()
    else void requestBackgroundSync()
  }

  async function process(text: string, scannedAt?: Date) {
    if (busy.value) return
    busy.value = true
    const started = performance.now()
    try {
      let result: Awaited<ReturnType<typeof handleScan>>
      try {
        result = await handleScan(text, kind(), scannedAt)
      } catch {
        result = { kind: 'refused', reason: 'error', message: '处理二维码时出错，请再扫一次' }
      }
      if (result.kind === 'login_needed') {
        await router.replace({ name: 'login', query: { next: `/q/${result.token}`, at: String(Date.now()) } })
        return
      }
      if (result.kind === 'refused') outcome.value = { refused: { reason: result.reason, message: result.message } }
      else if (result.kind === 'choose') choice.value = result.pending
      else await afterQueued(result.item)
      await shown(started)
    } finally {
      busy.value = false
    }
  }

  async function pick(action: { activity?: PendingChoice['options'][number] } | null) {
    const pending = choice.value
    if (!pending) return
    choice.value = null
    await afterQueued(await resolveChoice(pending, action?.activity ?? null))
  }

  function showRefused(reason: string, message: string) {
    outcome.value = { refused: { reason, message } }
  }

  function reset() {
    outcome.value = null
    choice.value = null
  }

  return { busy, outcome, choice, choiceActions, hasOutcome, process, pick, showRefused, reset }
}
