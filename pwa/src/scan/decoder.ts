// QR decoding: the browser's BarcodeDetector where it exists (fast path), zxing-wasm otherwise.
// zxing-wasm and its .wasm load only when the scanner opens; the .wasm is served from our own origin
// (and precached), never from a CDN.

export interface QrDecoder {
  engine: 'native' | 'zxing'
  /** The text of the first QR code in the frame, or null. */
  decode(frame: ImageData | HTMLCanvasElement): Promise<string | null>
}

interface NativeDetector {
  detect(source: ImageBitmapSource): Promise<{ rawValue: string }[]>
}
interface NativeDetectorClass {
  new (options: { formats: string[] }): NativeDetector
  getSupportedFormats(): Promise<string[]>
}

let decoderPromise: Promise<QrDecoder> | null = null

async function nativeDecoder(): Promise<QrDecoder | null> {
  const Detector = (globalThis as unknown as { BarcodeDetector?: NativeDetectorClass }).BarcodeDetector
  if (!Detector) return null
  try {
    if (!(await Detector.getSupportedFormats()).includes('qr_code')) return null
    const detector = new Detector({ formats: ['qr_code'] })
    return {
      engine: 'native',
      async decode(frame) {
        const found = await detector.detect(frame as ImageBitmapSource)
        return found[0]?.rawValue ?? null
      },
    }
  } catch {
    return null
  }
}

async function zxingDecoder(): Promise<QrDecoder> {
  const [{ prepareZXingModule, readBarcodes }, wasm] = await Promise.all([
    import('zxing-wasm/reader'),
    import('zxing-wasm/reader/zxing_reader.wasm?url'),
  ])
  prepareZXingModule({
    overrides: { locateFile: (path: string, prefix: string) => (path.endsWith('.wasm') ? wasm.default : prefix + path) },
    fireImmediately: true,
  })
  const canvasData = (frame: HTMLCanvasElement): ImageData => {
    const context = frame.getContext('2d', { willReadFrequently: true })!
    return context.getImageData(0, 0, frame.width, frame.height)
  }
  return {
    engine: 'zxing',
    async decode(frame) {
      const image = frame instanceof ImageData ? frame : canvasData(frame)
      const results = await readBarcodes(image, { formats: ['QRCode'], maxNumberOfSymbols: 1, tryHarder: true })
      const hit = results.find((r) => r.isValid && r.text)
      return hit ? hit.text : null
    },
  }
}

export function getDecoder(): Promise<QrDecoder> {
  decoderPromise ??= (async () => (await nativeDecoder()) ?? (await zxingDecoder()))()
  return decoderPromise
}

/** Decodes a photo (the "拍照识别" fallback for browsers without camera streams). */
export async function decodeImageFile(file: Blob): Promise<string | null> {
  const bitmap = await createImageBitmap(file)
  const scale = Math.min(1, 1280 / Math.max(bitmap.width, bitmap.height))
  const canvas = document.createElement('canvas')
  canvas.width = Math.round(bitmap.width * scale)
  canvas.height = Math.round(bitmap.height * scale)
  canvas.getContext('2d', { willReadFrequently: true })!.drawImage(bitmap, 0, 0, canvas.width, canvas.height)
  bitmap.close()
  return (await getDecoder()).decode(canvas)
}
