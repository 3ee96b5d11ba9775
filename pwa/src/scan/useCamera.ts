// Camera preview + a decode every ~80 ms while `paused()` is false. Shared by the member scanner
// and the staff card scanner.
import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'
import { getDecoder, type QrDecoder } from './decoder'
import { metrics, record } from '../lib/metrics'

export function useCamera(video: Ref<HTMLVideoElement | undefined>, onText: (text: string) => Promise<void>, paused: () => boolean) {
  const cameraError = ref('')
  const starting = ref(true)
  let stream: MediaStream | null = null
  let decoder: QrDecoder | null = null
  let timer: number | undefined
  let stopped = false
  const canvas = document.createElement('canvas')

  async function start() {
    starting.value = true
    cameraError.value = ''
    if (!navigator.mediaDevices?.getUserMedia) {
      cameraError.value = '此浏览器无法打开摄像头，请用下方“拍照识别”'
      starting.value = false
      return
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      })
      if (stopped) return stop()
      video.value!.srcObject = stream
      await video.value!.play()
      decoder = await getDecoder()
      metrics.engine = decoder.engine
      starting.value = false
      schedule()
    } catch (error) {
      starting.value = false
      const name = (error as DOMException)?.name
      cameraError.value = name === 'NotAllowedError' ? '没有摄像头权限：请在浏览器设置中允许，或用“拍照识别”' : '摄像头打开失败，请用“拍照识别”'
    }
  }

  function stop() {
    window.clearTimeout(timer)
    stream?.getTracks().forEach((t) => t.stop())
    stream = null
  }

  function schedule() {
    window.clearTimeout(timer)
    if (!stopped) timer = window.setTimeout(frame, 80)
  }

  async function frame() {
    const el = video.value
    if (stopped || !decoder || !el || paused() || el.readyState < 2 || el.videoWidth === 0) return schedule()
    const scale = Math.min(1, 640 / el.videoWidth)
    canvas.width = Math.round(el.videoWidth * scale)
    canvas.height = Math.round(el.videoHeight * scale)
    canvas.getContext('2d', { willReadFrequently: true })!.drawImage(el, 0, 0, canvas.width, canvas.height)
    const started = performance.now()
    let text: string | null = null
    try {
      text = await decoder.decode(canvas)
    } catch {
      text = null
    }
    record(metrics.decodeMs, performance.now() - started)
    if (text) await onText(text)
    schedule()
  }

  onMounted(() => void start())
  onBeforeUnmount(() => {
    stopped = true
    stop()
  })

  return { cameraError, starting, resume: schedule }
}
