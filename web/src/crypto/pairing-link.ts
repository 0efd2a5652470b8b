// What the QR code's URL fragment carries (transports/src/e2e/pairing_link.rs):
// base64url of a kind byte, a 16-byte seed, the relay's device id (16 bytes
// when it is a UUID) and, when the app is not served by the relay, the relay's
// URL. The pairing secret, the relay's pairing token and the token's id are
// derived from the seed with HKDF-SHA-256. Without a relay in the link, the
// relay is the page's own origin.

import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { toHex } from "../hex.js";

const SEED_BYTES = 16;
const WITH_UUID = 2;
const WITH_TEXT_ID = 3;
const WITH_UUID_AND_RELAY = 4;
const WITH_TEXT_ID_AND_RELAY = 5;
const MAX_RELAY_URL = 200;
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

// `ignoreBOM`: a leading U+FEFF stays, as in Rust, so both read a link alike.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF-8 text, or null for bytes that are not. */
function text(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/** A relay URL as a link may carry it: http(s), a host, printable ASCII. */
function relayUrl(bytes: Uint8Array): string | null {
  const url = text(bytes);
  // No credentials (@), and nothing that would end or bend the URLs built from it (\ ? #).
  if (!url || url.length > MAX_RELAY_URL || !/^https?:\/\/[\x21-\x7e]+$/.test(url) || /^https?:\/\/\//.test(url) || /[@\\?#]/.test(url)) return null;
  return url;
}

/** The device id and the relay (null: the page's origin) after the seed. */
function named(kind: number | undefined, rest: Uint8Array): { deviceId: string; relay: string | null } | null {
  if (kind === WITH_UUID && rest.length === 16) return { deviceId: uuidText(rest), relay: null };
  if (kind === WITH_TEXT_ID && rest.length > 0) {
    const deviceId = text(rest);
    return deviceId ? { deviceId, relay: null } : null;
  }
  if (kind === WITH_UUID_AND_RELAY && rest.length > 16) {
    const relay = relayUrl(rest.subarray(16));
    return relay ? { deviceId: uuidText(rest.subarray(0, 16)), relay } : null;
  }
  if (kind === WITH_TEXT_ID_AND_RELAY && rest.length > 1) {
    const length = rest[0] ?? 0;
    if (length === 0 || rest.length <= 1 + length) return null;
    const deviceId = text(rest.subarray(1, 1 + length));
    const relay = relayUrl(rest.subarray(1 + length));
    return deviceId && relay ? { deviceId, relay } : null;
  }
  return null;
}

/** The link in `fragment` (with or without `#`) opened on a page at `origin`; null if it is none. */
export function parsePairingLink(fragment: string, origin: string): PairingLink | null {
  const bytes = fromBase64url(fragment.replace(/^#/, ""));
  if (!bytes || bytes.length < 1 + SEED_BYTES) return null;
  const seed = bytes.subarray(1, 1 + SEED_BYTES);
  const found = named(bytes[0], bytes.subarray(1 + SEED_BYTES));
  if (!found) return null;
  return {
    relay: found.relay ?? origin,
    deviceId: found.deviceId,
    secret: derive(seed, "loopsy pairing psk v2", 32),
    token: toHex(derive(seed, "loopsy pairing token v2", 32)),
    tokenId: toHex(derive(seed, "loopsy pairing token id v2", 16)),
  };
}
