// What the QR code's URL fragment carries (transports/src/e2e/pairing_link.rs):
// base64url of a kind byte, a 16-byte seed and the relay's device id (16 bytes
// when it is a UUID). The pairing secret, the relay's pairing token and the
// token's id are derived from the seed with HKDF-SHA-256; the relay is the
// page's own origin, since the relay serves the app.

import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { toHex } from "../hex.js";

const SEED_BYTES = 16;
const WITH_UUID = 2;
const WITH_TEXT_ID = 3;
const utf8 = new TextEncoder();

/** What pairing needs, read from a link. */
export interface PairingLink {
  relay: string;
  deviceId: string;
  tokenId: string;
  token: string;
  secret: Uint8Array;
}

function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function derive(seed: Uint8Array, info: string, length: number): Uint8Array {
  return hkdf(sha256, seed, new Uint8Array(), utf8.encode(info), length);
}

function uuidText(bytes: Uint8Array): string {
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The link in `fragment` (with or without `#`) opened on a page at `origin`; null if it is none. */
export function parsePairingLink(fragment: string, origin: string): PairingLink | null {
  const bytes = fromBase64url(fragment.replace(/^#/, ""));
  if (!bytes || bytes.length < 1 + SEED_BYTES) return null;
  const seed = bytes.subarray(1, 1 + SEED_BYTES);
  const id = bytes.subarray(1 + SEED_BYTES);
  let deviceId: string;
  if (bytes[0] === WITH_UUID && id.length === 16) deviceId = uuidText(id);
  else if (bytes[0] === WITH_TEXT_ID && id.length > 0) {
    try {
      deviceId = new TextDecoder("utf-8", { fatal: true }).decode(id);
    } catch {
      return null; // Not UTF-8: no link of ours.
    }
  } else return null;
  return {
    relay: origin,
    deviceId,
    secret: derive(seed, "loopsy pairing psk v2", 32),
    token: toHex(derive(seed, "loopsy pairing token v2", 32)),
    tokenId: toHex(derive(seed, "loopsy pairing token id v2", 16)),
  };
}
