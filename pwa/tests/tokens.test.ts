// Signature checks of QR codes: WebCrypto where it has Ed25519, @noble/ed25519 otherwise.
import 'fake-indexeddb/auto'
import { generateKeyPairSync, sign } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { kvSet } from '../src/lib/db'
import { verifyToken } from '../src/lib/tokens'

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url')
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const other = generateKeyPairSync('ed25519')
const jwk = { ...(publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string }), kid: 's2026' }
const kiosk = generateKeyPairSync('ed25519')
const kioskJwk = { ...(kiosk.publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string }), kid: 'k7' }

function token(claims: object, key = privateKey, kid = 's2026'): string {
  const signed = `${b64url(JSON.stringify({ alg: 'EdDSA', kid }))}.${b64url(JSON.stringify(claims))}`
  return `${signed}.${b64url(sign(null, Buffer.from(signed), key))}`
}

async function withKeys() {
  await kvSet('jwks', { keys: [jwk, kioskJwk], fetched_ms: Date.now() })
  vi.stubGlobal('fetch', async () => { throw new TypeError('offline') }) // no network: cached keys only
}

afterEach(() => vi.unstubAllGlobals())

describe.each([
  ['WebCrypto', false],
  ['@noble/ed25519 (no WebCrypto Ed25519)', true],
])('verifyToken with %s', (_name, noWebCrypto) => {
  it('accepts a genuine code and refuses forged, tampered and unknown-key ones', async () => {
    await withKeys()
    if (noWebCrypto) vi.stubGlobal('crypto', { getRandomValues: (a: Uint8Array) => a, subtle: undefined })
    const claims = { t: 'ac', aid: 5, sid: 2, nbf: 1, exp: 2_000_000_000 }
    expect(await verifyToken(token(claims))).toEqual(claims)
    await expect(verifyToken(token(claims, other.privateKey))).rejects.toMatchObject({ reason: 'bad_signature' })
    const [h, , s] = token(claims).split('.')
    await expect(verifyToken(`${h}.${b64url(JSON.stringify({ ...claims, aid: 6 }))}.${s}`)).rejects.toMatchObject({ reason: 'bad_signature' })
    await expect(verifyToken(token(claims, privateKey, 'k-unknown'))).rejects.toMatchObject({ reason: 'unknown_key' })
    // A kiosk key signs its rotating codes only: an activity code or a poster from it is forged.
    const rotating = { t: 'rk', sid: 2, iat: 1_900_000_000 }
    expect(await verifyToken(token(rotating, kiosk.privateKey, 'k7'))).toEqual(rotating)
    await expect(verifyToken(token(claims, kiosk.privateKey, 'k7'))).rejects.toMatchObject({ reason: 'bad_signature' })
    await expect(verifyToken(token({ t: 'st', sid: 2, v: 1 }, kiosk.privateKey, 'k7'))).rejects.toMatchObject({ reason: 'bad_signature' })
  })
})
