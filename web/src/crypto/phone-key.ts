// The phone's own static key. Where WebCrypto offers X25519 (secure pages in
// current browsers) the key is made there as non-extractable: the page can use
// it but no script, injected or not, can read its private half out, and
// IndexedDB keeps the CryptoKey object itself. Where it does not (a plain-HTTP
// LAN page has no crypto.subtle) the key comes from @noble and is kept as
// bytes. The handshake is the same either way.

import { fromHex, toHex } from "../hex.js";
import { type StaticKey, keyPair } from "./noise.js";

/** How a phone key is kept in IndexedDB. */
export type StoredPhoneKey =
  | { kind: "webcrypto"; privateKey: CryptoKey; publicKey: string }
  | { kind: "raw"; privateKey: string };

const X25519 = { name: "X25519" } as const;

/** X25519 with a WebCrypto private key that never leaves WebCrypto. */
export function webCryptoStatic(privateKey: CryptoKey, publicKey: Uint8Array): StaticKey {
  return {
    publicKey,
    async dh(remote: Uint8Array): Promise<Uint8Array> {
      const peer = await crypto.subtle.importKey("raw", remote as Uint8Array<ArrayBuffer>, X25519, true, []);
      return new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: peer }, privateKey, 256));
    },
  };
}

/** A fresh phone key: non-extractable in WebCrypto when it can be, bytes otherwise. */
export async function newPhoneKey(): Promise<StoredPhoneKey> {
  if (globalThis.crypto?.subtle) {
    try {
      const pair = (await crypto.subtle.generateKey(X25519, false, ["deriveBits"])) as CryptoKeyPair;
      const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      return { kind: "webcrypto", privateKey: pair.privateKey, publicKey: toHex(publicKey) };
    } catch {
      // A browser whose WebCrypto lacks X25519: the @noble key below.
    }
  }
  return { kind: "raw", privateKey: toHex(keyPair().privateKey) };
}

/** The handshake's view of a kept key. */
export function staticKey(stored: StoredPhoneKey): StaticKey {
  return stored.kind === "webcrypto" ? webCryptoStatic(stored.privateKey, fromHex(stored.publicKey)) : keyPair(fromHex(stored.privateKey));
}
