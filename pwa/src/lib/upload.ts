// Multipart upload with the bearer token (the member import); JSON answer or ApiError.
import { api, API, ApiError, NetworkError } from './http'
import { loadSession } from './session'

export async function uploadFile<T>(path: string, file: File): Promise<{ status: number; body: T }> {
  await api('/me') // renews an expired access token first (multipart cannot go through api())
  const session = await loadSession()
  const form = new FormData()
  form.append('file', file)
  let response: Response
  try {
    response = await fetch(API + path, { method: 'POST', body: form, headers: session ? { Authorization: `Bearer ${session.access_token}` } : {} })
  } catch {
    throw new NetworkError('网络不可用')
  }
  const body = await response.json().catch(() => null)
  if (response.status >= 400 && !(body && 'errors' in body)) {
    throw new ApiError(response.status, body?.code ?? `http_${response.status}`, body?.detail ?? `上传失败（${response.status}）`, body)
  }
  return { status: response.status, body: body as T }
}
