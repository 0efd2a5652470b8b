// The Noise Protocol Framework (revision 34), just what loopsy's phone channel
// uses: the patterns XXpsk3 (pairing) and KK (every connection) over the suite
// 25519_ChaChaPoly_SHA256. Every primitive comes from the audited @noble
// libraries, so this runs where crypto.subtle is missing (plain-HTTP LAN
// pages). It is checked against the same published vectors as the daemon's
// Rust side (transports/tests/vectors/).

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

export const PAIRING_PATTERN = "Noise_XXpsk3_25519_ChaChaPoly_SHA256";
export const CONNECTION_PATTERN = "Noise_KK_25519_ChaChaPoly_SHA256";
export const MAX_MESSAGE = 65535;
export const TAG_LENGTH = 16;
export const MAX_PLAINTEXT = MAX_MESSAGE - TAG_LENGTH;
const HASH_LENGTH = 32;
const DH_LENGTH = 32;
/** Each direction rekeys after this many messages (Noise's REKEY). */
const REKEY_EVERY = 2 ** 30;

export class NoiseError extends Error {}

type Token = "e" | "s" | "ee" | "es" | "se" | "ss" | "psk";

interface Pattern {
  /** Static keys each side knows of the other beforehand. */
  initiatorKnown: boolean;
  responderKnown: boolean;
  messages: Token[][];
  psk: boolean;
}

const PATTERNS: Record<string, Pattern> = {
  [PAIRING_PATTERN]: {
    initiatorKnown: false,
    responderKnown: false,
    messages: [["e"], ["e", "ee", "s", "es"], ["s", "se", "psk"]],
    psk: true,
  },
  [CONNECTION_PATTERN]: {
    initiatorKnown: true,
    responderKnown: true,
    messages: [["e", "es", "ss"], ["e", "ee", "se"]],
    psk: false,
  },
};

const encoder = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** ChaChaPoly's nonce for Noise: 32 zero bits, then the counter little-endian. */
function nonce(counter: number): Uint8Array {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint32(4, counter % 2 ** 32, true);
  view.setUint32(8, Math.floor(counter / 2 ** 32), true);
  return bytes;
}

/** HKDF as Noise defines it: two or three 32-byte outputs. */
function hkdf(chainingKey: Uint8Array, input: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const temp = hmac(sha256, chainingKey, input);
  const first = hmac(sha256, temp, Uint8Array.of(1));
  const second = hmac(sha256, temp, concat(first, Uint8Array.of(2)));
  if (outputs === 2) return [first, second];
  return [first, second, hmac(sha256, temp, concat(second, Uint8Array.of(3)))];
}

export class CipherState {
  private key: Uint8Array | null = null;
  private counter = 0;

  initializeKey(key: Uint8Array | null): void {
    this.key = key;
    this.counter = 0;
  }

  hasKey(): boolean {
    return this.key !== null;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.key === null) return plaintext;
    if (this.counter >= Number.MAX_SAFE_INTEGER) throw new NoiseError("nonce exhausted");
    const sealed = chacha20poly1305(this.key, nonce(this.counter), ad).encrypt(plaintext);
    this.counter += 1;
    return sealed;
  }

  /** Throws on a message that does not open; the counter then stays put. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.key === null) return ciphertext;
    let plain: Uint8Array;
    try {
      plain = chacha20poly1305(this.key, nonce(this.counter), ad).decrypt(ciphertext);
    } catch {
      throw new NoiseError("a message did not open");
    }
    this.counter += 1;
    return plain;
  }

  rekey(): void {
    if (this.key === null) return;
    // Noise's REKEY: encrypt 32 zero bytes under the largest nonce (2^64 - 1).
    const largest = new Uint8Array(12).fill(0xff, 4);
    const sealed = chacha20poly1305(this.key, largest, new Uint8Array()).encrypt(new Uint8Array(32));
    this.key = sealed.slice(0, 32);
  }
}

class SymmetricState {
  readonly cipher = new CipherState();
  chainingKey: Uint8Array;
  hash: Uint8Array;

  constructor(protocolName: string) {
    const name = encoder.encode(protocolName);
    this.hash = name.length <= HASH_LENGTH ? concat(name, new Uint8Array(HASH_LENGTH - name.length)) : sha256(name);
    this.chainingKey = this.hash;
  }

  mixKey(input: Uint8Array): void {
    const [chainingKey, key] = hkdf(this.chainingKey, input, 2) as [Uint8Array, Uint8Array];
    this.chainingKey = chainingKey;
    this.cipher.initializeKey(key);
  }

  mixHash(data: Uint8Array): void {
    this.hash = sha256(concat(this.hash, data));
  }

  mixKeyAndHash(input: Uint8Array): void {
    const [chainingKey, temp, key] = hkdf(this.chainingKey, input, 3) as [Uint8Array, Uint8Array, Uint8Array];
    this.chainingKey = chainingKey;
    this.mixHash(temp);
    this.cipher.initializeKey(key);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const sealed = this.cipher.encryptWithAd(this.hash, plaintext);
    this.mixHash(sealed);
    return sealed;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plain = this.cipher.decryptWithAd(this.hash, ciphertext);
    this.mixHash(ciphertext);
    return plain;
  }

  split(): [CipherState, CipherState] {
    const [first, second] = hkdf(this.chainingKey, new Uint8Array(), 2) as [Uint8Array, Uint8Array];
    const a = new CipherState();
    const b = new CipherState();
    a.initializeKey(first);
    b.initializeKey(second);
    return [a, b];
  }
}

/** A static key as the handshake uses it: its public half, and X25519 with
 * its private half (which may live where this code cannot read it, such as a
 * non-extractable WebCrypto key). */
export interface StaticKey {
  publicKey: Uint8Array;
  dh(remote: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** A key pair whose private half is bytes in memory (ephemerals, and static
 * keys where WebCrypto lacks X25519). */
export interface KeyPair extends StaticKey {
  privateKey: Uint8Array;
  dh(remote: Uint8Array): Uint8Array;
}

export function keyPair(privateKey: Uint8Array = x25519.utils.randomSecretKey()): KeyPair {
  return { privateKey, publicKey: x25519.getPublicKey(privateKey), dh: (remote) => x25519.getSharedSecret(privateKey, remote) };
}

export interface HandshakeOptions {
  pattern: string;
  initiator: boolean;
  prologue: Uint8Array;
  localStatic: StaticKey;
  remoteStatic?: Uint8Array;
  psk?: Uint8Array;
  /** Tests only: a fixed ephemeral key instead of a random one. */
  fixedEphemeral?: Uint8Array;
}

export class Handshake {
  private readonly pattern: Pattern;
  private readonly symmetric: SymmetricState;
  private readonly initiator: boolean;
  private readonly localStatic: StaticKey;
  private localEphemeral: KeyPair | null = null;
  private remoteStaticKey: Uint8Array | null;
  private remoteEphemeral: Uint8Array | null = null;
  private readonly psk: Uint8Array | null;
  private readonly fixedEphemeral: Uint8Array | null;
  private step = 0;

  constructor(options: HandshakeOptions) {
    const pattern = PATTERNS[options.pattern];
    if (!pattern) throw new NoiseError(`unsupported pattern ${options.pattern}`);
    if (pattern.psk && options.psk?.length !== 32) throw new NoiseError("this pattern needs a 32-byte pre-shared key");
    this.pattern = pattern;
    this.initiator = options.initiator;
    this.localStatic = options.localStatic;
    this.remoteStaticKey = options.remoteStatic ?? null;
    this.psk = options.psk ?? null;
    this.fixedEphemeral = options.fixedEphemeral ?? null;
    this.symmetric = new SymmetricState(options.pattern);
    this.symmetric.mixHash(options.prologue);
    // Pre-messages: the initiator's static key first, then the responder's.
    const initiatorKey = this.initiator ? this.localStatic.publicKey : this.remoteStaticKey;
    const responderKey = this.initiator ? this.remoteStaticKey : this.localStatic.publicKey;
    if (pattern.initiatorKnown) {
      if (!initiatorKey) throw new NoiseError("the initiator's static key must be known");
      this.symmetric.mixHash(initiatorKey);
    }
    if (pattern.responderKnown) {
      if (!responderKey) throw new NoiseError("the responder's static key must be known");
      this.symmetric.mixHash(responderKey);
    }
  }

  get finished(): boolean {
    return this.step >= this.pattern.messages.length;
  }

  get myTurn(): boolean {
    return !this.finished && (this.step % 2 === 0) === this.initiator;
  }

  get remoteStatic(): Uint8Array | null {
    return this.remoteStaticKey;
  }

  get hash(): Uint8Array {
    return this.symmetric.hash;
  }

  private async dh(token: "ee" | "es" | "se" | "ss"): Promise<Uint8Array> {
    const local =
      token === "ee" || (token === "es" && this.initiator) || (token === "se" && !this.initiator)
        ? this.localEphemeral
        : this.localStatic;
    const remote =
      token === "ee" || (token === "se" && this.initiator) || (token === "es" && !this.initiator)
        ? this.remoteEphemeral
        : this.remoteStaticKey;
    if (!local || !remote) throw new NoiseError(`missing key material for ${token}`);
    try {
      return await local.dh(remote);
    } catch {
      // A low-order point yields an all-zero secret, which both libraries refuse.
      throw new NoiseError(`the key exchange failed (${token})`);
    }
  }

  /** The tokens that mix a secret in, the same whichever side reads or writes. */
  private async mixSecret(token: "ee" | "es" | "se" | "ss" | "psk"): Promise<void> {
    if (token === "psk") this.symmetric.mixKeyAndHash(this.psk ?? new Uint8Array());
    else this.symmetric.mixKey(await this.dh(token));
  }

  async write(payload: Uint8Array = new Uint8Array()): Promise<Uint8Array> {
    if (!this.myTurn) throw new NoiseError("not this side's turn to write");
    const parts: Uint8Array[] = [];
    for (const token of this.pattern.messages[this.step] ?? []) {
      switch (token) {
        case "e": {
          this.localEphemeral = keyPair(this.fixedEphemeral ?? undefined);
          parts.push(this.localEphemeral.publicKey);
          this.symmetric.mixHash(this.localEphemeral.publicKey);
          if (this.pattern.psk) this.symmetric.mixKey(this.localEphemeral.publicKey);
          break;
        }
        case "s":
          parts.push(this.symmetric.encryptAndHash(this.localStatic.publicKey));
          break;
        default:
          await this.mixSecret(token);
      }
    }
    parts.push(this.symmetric.encryptAndHash(payload));
    this.step += 1;
    const message = concat(...parts);
    if (message.length > MAX_MESSAGE) throw new NoiseError("handshake message too large");
    return message;
  }

  /** Reads the other side's message; returns its payload. */
  async read(message: Uint8Array): Promise<Uint8Array> {
    if (this.finished || this.myTurn) throw new NoiseError("not this side's turn to read");
    if (message.length > MAX_MESSAGE) throw new NoiseError("handshake message too large");
    let at = 0;
    const take = (length: number): Uint8Array => {
      if (at + length > message.length) throw new NoiseError("handshake message too short");
      const part = message.subarray(at, at + length);
      at += length;
      return part;
    };
    for (const token of this.pattern.messages[this.step] ?? []) {
      switch (token) {
        case "e": {
          this.remoteEphemeral = take(DH_LENGTH).slice();
          this.symmetric.mixHash(this.remoteEphemeral);
          if (this.pattern.psk) this.symmetric.mixKey(this.remoteEphemeral);
          break;
        }
        case "s": {
          const length = this.symmetric.cipher.hasKey() ? DH_LENGTH + TAG_LENGTH : DH_LENGTH;
          this.remoteStaticKey = this.symmetric.decryptAndHash(take(length));
          break;
        }
        default:
          await this.mixSecret(token);
      }
    }
    const payload = this.symmetric.decryptAndHash(message.subarray(at));
    this.step += 1;
    return payload;
  }

  /** The transport channel once the handshake is finished. */
  channel(): Channel {
    if (!this.finished) throw new NoiseError("the handshake is not finished");
    const [toResponder, toInitiator] = this.symmetric.split();
    return this.initiator ? new Channel(toResponder, toInitiator) : new Channel(toInitiator, toResponder);
  }
}

/** An established channel: one sealed message per frame, in order. The first
 * message that does not open breaks it for good. */
export class Channel {
  private sent = 0;
  private received = 0;
  private broken = false;

  constructor(
    private readonly sending: CipherState,
    private readonly receiving: CipherState,
  ) {}

  seal(plaintext: Uint8Array): Uint8Array {
    if (this.broken) throw new NoiseError("the channel is closed after an earlier failure");
    if (plaintext.length > MAX_PLAINTEXT) throw new NoiseError(`a frame of ${plaintext.length} bytes is over the limit`);
    const sealed = this.sending.encryptWithAd(new Uint8Array(), plaintext);
    this.sent += 1;
    if (this.sent % REKEY_EVERY === 0) this.sending.rekey();
    return sealed;
  }

  open(message: Uint8Array): Uint8Array {
    if (this.broken) throw new NoiseError("the channel is closed after an earlier failure");
    try {
      if (message.length > MAX_MESSAGE) throw new NoiseError("message too large");
      const plain = this.receiving.decryptWithAd(new Uint8Array(), message);
      this.received += 1;
      if (this.received % REKEY_EVERY === 0) this.receiving.rekey();
      return plain;
    } catch (error) {
      this.broken = true;
      throw error instanceof NoiseError ? error : new NoiseError(String(error));
    }
  }
}

/** Binds a pairing to its device and token (the same bytes as the daemon's). */
export function pairingPrologue(deviceId: string, tokenId: string): Uint8Array {
  return encoder.encode(`loopsy pairing v1\n${deviceId}\n${tokenId}`);
}

/** Binds a connection to its device and phone. */
export function connectionPrologue(deviceId: string, phoneId: string): Uint8Array {
  return encoder.encode(`loopsy connection v1\n${deviceId}\n${phoneId}`);
}

/** First 16 bytes of SHA-256 of a public key, as eight groups of four hex digits. */
export function fingerprint(publicKey: Uint8Array): string {
  const hex = Array.from(sha256(publicKey).slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return hex.match(/.{4}/g)?.join(" ") ?? "";
}
