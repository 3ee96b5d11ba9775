// Offline verification of the QR codes of DESIGN §3: Ed25519 signature against the cached JWKS
// (WebCrypto, @noble/ed25519 where WebCrypto lacks Ed25519), then the time rules at scan time.
import { api, NetworkError } from './http'
import { kvGet, kvSet } from './db'
import { REASON_MESSAGES } from './messages'

export interface Jwk { kty: string; crv: string; x: string; kid: string; use?: string; alg?: string }
interface CachedJwks { keys: Jwk[]; fetched_ms: number }

export interface Claims {
  t: 'st' | 'ac' | 'rk' | 'mb' | string
  sid?: number
  aid?: number
  mid?: number
  v?: number
  nbf?: number
  exp?: number
  iat?: number
}

export class Refused extends Error {
  constructor(public reason: string, message?: string) {
    super(message ?? REASON_MESSAGES[reason] ?? '二维码无法使用')
  }
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const MAX_TOKEN = 2048
export const KIOSK_MAX_AGE_S = 60

/** Accepts the bare JWS or the whole …/q/{token} URL (same rule as the server). */
export function extractToken(text: string): string {
  let token = (text ?? '').trim()
  const marker = token.lastIndexOf('/q/')
  if (marker >= 0) token = token.slice(marker + 3).split('?')[0].split('#')[0].replace(/\/+$/, '')
  if (!token || token.length > MAX_TOKEN || !TOKEN_SHAPE.test(token)) throw new Refused('malformed')
  return token
}

function b64urlBytes(segment: string): Uint8Array {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((segment.length + 3) % 4)
  const binary = atob(base64)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

function b64urlJson(segment: string): Record<string, unknown> {
  try {
    const value = JSON.parse(new TextDecoder().decode(b64urlBytes(segment)))
    if (value && typeof value === 'object' && !Array.isArray(value)) return value
  } catch {
    /* fall through */
  }
  throw new Refused('malformed')
}

// -- keys ---------------------------------------------------------------------
let memoryJwks: CachedJwks | undefined

export async function cachedJwks(): Promise<CachedJwks | undefined> {
  memoryJwks ??= await kvGet<CachedJwks>('jwks')
  return memoryJwks
}

/** Fetches the JWKS and caches it; returns the cached copy when the network is down. */
export async function refreshJwks(): Promise<CachedJwks | undefined> {
  try {
    const fresh = await api<{ keys: Jwk[] }>('/keys', { auth: false })
    memoryJwks = { keys: fresh.keys, fetched_ms: Date.now() }
    await kvSet('jwks', memoryJwks)
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error
  }
  return cachedJwks()
}

async function findKey(kid: string): Promise<Jwk | undefined> {
  let jwks = await cachedJwks()
  let key = jwks?.keys.find((k) => k.kid === kid)
  // A new poster may be signed by a key (or kiosk) this phone has not seen yet.
  if (!key && (!jwks || Date.now() - jwks.fetched_ms > 5_000)) {
    // Never let a slow or failing server hold a scan: 3 s, then judge with what is cached.
    const timeout = new Promise<CachedJwks | undefined>((resolve) => setTimeout(() => resolve(jwks), 3000))
    jwks = await Promise.race([refreshJwks().catch(() => jwks), timeout])
    key = jwks?.keys.find((k) => k.kid === kid)
  }
  return key
}

let webCryptoEd25519: boolean | undefined
const importedKeys = new Map<string, Promise<CryptoKey>>()

async function verifySignature(jwk: Jwk, signed: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const subtle = globalThis.crypto?.subtle
  if (subtle && webCryptoEd25519 !== false) {
    try {
      const id = `${jwk.kid}:${jwk.x}`
      let key = importedKeys.get(id)
      if (!key) {
        key = subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, ['verify'])
        importedKeys.set(id, key)
      }
      const ok = await subtle.verify({ name: 'Ed25519' }, await key, signature as BufferSource, signed as BufferSource)
      webCryptoEd25519 = true
      return ok
    } catch {
      importedKeys.delete(`${jwk.kid}:${jwk.x}`)
      webCryptoEd25519 = false
    }
  }
  // Older phones and WeChat's browser: pure-JS Ed25519, loaded only when needed.
  const [ed, { sha512 }] = await Promise.all([import('@noble/ed25519'), import('@noble/hashes/sha2.js')])
  ed.hashes.sha512 = sha512
  try {
    return ed.verify(signature, signed, b64urlBytes(jwk.x))
  } catch {
    return false
  }
}

/** Verified claims of a code, or Refused(reason). Time rules are checked by judgeTime(). */
export async function verifyToken(token: string): Promise<Claims> {
  const [headerPart, payloadPart, signaturePart] = token.split('.')
  const header = b64urlJson(headerPart)
  if (typeof header.kid !== 'string') throw new Refused('malformed')
  if (header.alg !== 'EdDSA') throw new Refused('bad_signature')
  const claims = b64urlJson(payloadPart) as unknown as Claims
  if (typeof claims.t !== 'string') throw new Refused('malformed')
  const key = await findKey(header.kid)
  if (!key) throw new Refused('unknown_key')
  const signed = new TextEncoder().encode(`${headerPart}.${payloadPart}`)
  if (!(await verifySignature(key, signed, b64urlBytes(signaturePart)))) throw new Refused('bad_signature')
  // A kiosk key (kid k{id}) signs only its rotating codes, as the server insists.
  if (/^k\d+$/.test(header.kid) && claims.t !== 'rk') throw new Refused('bad_signature')
  return claims
}

/** The time rules the phone can judge alone, at `nowSeconds` (the scan time). */
export function judgeTime(claims: Claims, nowSeconds: number): void {
  switch (claims.t) {
    case 'ac':
      if (typeof claims.nbf !== 'number' || typeof claims.exp !== 'number' || typeof claims.aid !== 'number') {
        throw new Refused('malformed')
      }
      if (nowSeconds < claims.nbf || nowSeconds > claims.exp) throw new Refused('expired')
      return
    case 'st':
      if (typeof claims.sid !== 'number') throw new Refused('malformed')
      return
    case 'rk':
      if (typeof claims.sid !== 'number' || typeof claims.iat !== 'number') throw new Refused('malformed')
      if (Math.abs(nowSeconds - claims.iat) > KIOSK_MAX_AGE_S) throw new Refused('expired')
      return
    case 'mb':
      throw new Refused('not_allowed', REASON_MESSAGES.wrong_code)
    default:
      throw new Refused('malformed')
  }
}
