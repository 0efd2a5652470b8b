// The phone's side of the relay protocol: a WebSocket through the relay, the
// end-to-end handshake with the laptop, then the daemon's framed JSON-RPC
// inside the sealed channel. Mirrors the Rust test phone (cli/tests/it/test_phone.rs).

import { BINARY_FRAME, type Frame, JSON_FRAME, Reassembler, sealFrame } from "./crypto/frames.js";
import { CONNECTION_PATTERN, type Channel, Handshake, PAIRING_PATTERN, connectionPrologue, pairingPrologue } from "./crypto/noise.js";
import type { PairingLink } from "./crypto/pairing-link.js";
import { type StoredPhoneKey, staticKey } from "./crypto/phone-key.js";
import { fromHex, toHex } from "./hex.js";

const SUBPROTOCOL = "loopsy.relay.v1";
/** How long opening a socket or waiting for a handshake answer may take. */
const TIMEOUT_MS = 10_000;
/** Close code of the relay for a revoked phone. */
export const REVOKED = 4003;
/** Close code of the relay for a pairing link it refuses (used, expired, dead). */
const PAIRING_REFUSED = 4006;
/** Close code of the relay when the laptop closed the channel. */
const CLOSED_BY_LAPTOP = 4007;

/** Why this phone cannot go on with a laptop, in words for the person holding it. */
export class RefusedError extends Error {
  constructor(
    message: string,
    /** "revoked": the laptop removed this phone; "pairing": the link is spent. */
    readonly kind: "revoked" | "pairing",
  ) {
    super(message);
  }
}

/** What a pairing link refused by the relay means (its close reason names why). */
function pairingRefusal(reason: string): RefusedError {
  const again = "On your laptop, run “loopsy mobile pair” for a new code.";
  const why = reason.includes("used")
    ? "This pairing link was used already."
    : reason.includes("wrong codes")
      ? "This pairing was closed after five wrong codes."
      : "This pairing link has expired.";
  return new RefusedError(`${why} ${again}`, "pairing");
}
const BEARER_PREFIX = "loopsy.bearer.";
const utf8 = new TextEncoder();
const text = new TextDecoder();

export type { PairingLink } from "./crypto/pairing-link.js";
export { parsePairingLink } from "./crypto/pairing-link.js";

function wsUrl(relay: string, path: string): string {
  return relay.replace(/^http/, "ws").replace(/\/$/, "") + path;
}

/** The socket closed while an answer was awaited. */
class SocketClosed extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`the connection closed (${reason || code})`);
  }
}

/** A WebSocket whose messages can be awaited one at a time. */
class Socket {
  private readonly queue: (ArrayBuffer | string)[] = [];
  private waiting: ((message: ArrayBuffer | string | null) => void) | null = null;
  closed: { code: number; reason: string } | null = null;
  onClose: ((code: number, reason: string) => void) | null = null;
  onMessage: ((message: ArrayBuffer | string) => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (event) => {
      const data = event.data as ArrayBuffer | string;
      if (this.onMessage) this.onMessage(data);
      else if (this.waiting) {
        const wake = this.waiting;
        this.waiting = null;
        wake(data);
      } else this.queue.push(data);
    };
    ws.onclose = (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.waiting?.(null);
      this.waiting = null;
      this.onClose?.(event.code, event.reason);
    };
  }

  static open(url: string, bearer: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [SUBPROTOCOL, BEARER_PREFIX + bearer]);
      const socket = new Socket(ws);
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error("the relay did not answer"));
      }, TIMEOUT_MS);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(socket);
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error("cannot reach the relay"));
      };
    });
  }

  next(): Promise<ArrayBuffer | string | null> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** The next binary message; gives up (closing the socket) after a while. */
  async binary(): Promise<Uint8Array> {
    const timer = setTimeout(() => this.ws.close(), TIMEOUT_MS);
    try {
      return await this.binaryUntilClosed();
    } finally {
      clearTimeout(timer);
    }
  }

  private async binaryUntilClosed(): Promise<Uint8Array> {
    for (;;) {
      const message = await this.next();
      if (message === null) throw new SocketClosed(this.closed?.code ?? 0, this.closed?.reason ?? "");
      if (message instanceof ArrayBuffer) return new Uint8Array(message);
    }
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes as Uint8Array<ArrayBuffer>);
  }
}

/** The key of a laptop paired by an earlier version of the app, which kept it as hex bytes. */
function legacyKey(laptop: Laptop): StoredPhoneKey {
  const { phonePrivateKey } = laptop as Laptop & { phonePrivateKey?: string };
  if (!phonePrivateKey) throw new Error("this laptop's pairing has no key; forget it and pair again");
  return { kind: "raw", privateKey: phonePrivateKey };
}

/** A laptop this phone paired with, as kept on the phone. */
export interface Laptop {
  deviceId: string;
  relay: string;
  phoneId: string;
  phoneSecret: string;
  daemonKey: string;
  name: string;
  fingerprint: string;
  /** This phone's key for that laptop (non-extractable where the browser can). */
  phoneKey: StoredPhoneKey;
  pairedAt: number;
}

export type PairingAnswer =
  | { kind: "paired"; laptop: Laptop }
  | { kind: "wrong-code"; attemptsLeft: number }
  | { kind: "dead" };

/** A pairing in progress: the handshake is done; codes can be tried. */
export class Pairing {
  private credentials: { phoneId: string; phoneSecret: string } | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly channel: Channel,
    private readonly link: PairingLink,
    private readonly phone: StoredPhoneKey,
    private readonly daemonKey: Uint8Array,
  ) {}

  static async start(link: PairingLink, phone: StoredPhoneKey, label: string): Promise<Pairing> {
    const socket = await Socket.open(wsUrl(link.relay, `/pair/connect/${encodeURIComponent(link.deviceId)}`), link.token);
    const handshake = new Handshake({
      pattern: PAIRING_PATTERN,
      initiator: true,
      prologue: pairingPrologue(link.deviceId, link.tokenId),
      localStatic: staticKey(phone),
      psk: link.secret,
    });
    socket.send(await handshake.write());
    try {
      await handshake.read(await socket.binary());
    } catch (error) {
      if (error instanceof SocketClosed && error.code === PAIRING_REFUSED) throw pairingRefusal(error.reason);
      throw error;
    }
    // The pairing secret authenticates the laptop: its key is kept only once
    // its answer, sealed under keys that need the secret, has opened.
    const daemonKey = handshake.remoteStatic;
    if (!daemonKey) throw new Error("the laptop sent no key");
    socket.send(await handshake.write(utf8.encode(JSON.stringify({ label }))));
    return new Pairing(socket, handshake.channel(), link, phone, daemonKey);
  }

  /** Sends `code`, and the name this phone goes by on the laptop. */
  async tryCode(code: string, name: string): Promise<PairingAnswer> {
    this.socket.send(this.channel.seal(utf8.encode(JSON.stringify({ type: "code", code, label: name }))));
    for (;;) {
      const message = await this.socket.next();
      if (message === null) return { kind: "dead" };
      if (typeof message === "string") {
        const credentials = JSON.parse(message);
        if (credentials.type === "credentials") this.credentials = { phoneId: credentials.phoneId, phoneSecret: credentials.phoneSecret };
        continue;
      }
      const answer = JSON.parse(text.decode(this.channel.open(new Uint8Array(message))));
      if (answer.type === "code-wrong") return { kind: "wrong-code", attemptsLeft: answer.attemptsLeft };
      if (answer.type === "pairing-dead") return { kind: "dead" };
      if (answer.type === "paired" && this.credentials) {
        this.socket.ws.close();
        return {
          kind: "paired",
          laptop: {
            deviceId: this.link.deviceId,
            relay: this.link.relay,
            phoneId: this.credentials.phoneId,
            phoneSecret: this.credentials.phoneSecret,
            daemonKey: toHex(this.daemonKey),
            name: String(answer.deviceName ?? "laptop"),
            fingerprint: String(answer.fingerprint ?? ""),
            phoneKey: this.phone,
            pairedAt: Date.now(),
          },
        };
      }
    }
  }
}

type Notification = (params: Record<string, unknown>) => void;

/** An established connection to a laptop: JSON-RPC calls, terminal bytes. */
export class Connection {
  private nextId = 1;
  private readonly pending = new Map<number, (answer: Record<string, unknown>) => void>();
  private readonly reassembler = new Reassembler();
  onOutput: ((bytes: Uint8Array) => void) | null = null;
  onEvent: Notification | null = null;
  onClose: ((code: number, reason: string) => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly channel: Channel,
  ) {
    socket.onMessage = (message) => {
      if (!(message instanceof ArrayBuffer)) return;
      let frame: Frame | null;
      try {
        frame = this.reassembler.push(this.channel.open(new Uint8Array(message)));
      } catch {
        socket.ws.close();
        return;
      }
      if (frame) this.deliver(frame);
    };
    socket.onClose = (code, reason) => {
      // Calls still waiting get an answer: the connection is gone.
      for (const resolve of this.pending.values()) resolve({ error: { message: "the connection closed" } });
      this.pending.clear();
      this.onClose?.(code, reason);
    };
  }

  static async open(laptop: Laptop): Promise<Connection> {
    const path = `/phone/connect/${encodeURIComponent(laptop.deviceId)}?phone_id=${encodeURIComponent(laptop.phoneId)}`;
    const socket = await Socket.open(wsUrl(laptop.relay, path), laptop.phoneSecret);
    const handshake = new Handshake({
      pattern: CONNECTION_PATTERN,
      initiator: true,
      prologue: connectionPrologue(laptop.deviceId, laptop.phoneId),
      localStatic: staticKey(laptop.phoneKey ?? legacyKey(laptop)),
      remoteStatic: fromHex(laptop.daemonKey),
    });
    socket.send(await handshake.write());
    try {
      await handshake.read(await socket.binary());
    } catch (error) {
      // Before the handshake answer: the relay says this phone was revoked, or
      // the laptop itself closed on a phone it no longer knows.
      if (error instanceof SocketClosed && (error.code === REVOKED || error.code === CLOSED_BY_LAPTOP)) {
        throw new RefusedError(`This phone was removed on ${laptop.name}. To use it again, pair again: run “loopsy mobile pair” on the laptop.`, "revoked");
      }
      throw error;
    }
    return new Connection(socket, handshake.channel());
  }

  private deliver(frame: Frame): void {
    if (frame.kind === BINARY_FRAME) {
      this.onOutput?.(frame.payload);
      return;
    }
    const message = JSON.parse(text.decode(frame.payload));
    if (typeof message.id === "number" && this.pending.has(message.id)) {
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(message);
    } else if (message.method === "stream.event") {
      this.onEvent?.(message.params ?? {});
    }
  }

  private send(frame: Frame): void {
    for (const sealed of sealFrame(this.channel, frame)) this.socket.send(sealed);
  }

  /** A call whose answer comes back (attach answers only when its stream ends). */
  call(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.send({ kind: JSON_FRAME, payload: utf8.encode(JSON.stringify({ jsonrpc: "2.0", id, method, params })) });
    return new Promise((resolve) => this.pending.set(id, resolve));
  }

  type(bytes: Uint8Array): void {
    this.send({ kind: BINARY_FRAME, payload: bytes });
  }

  close(): void {
    this.socket.ws.close();
  }

  /** Whether the connection has ended (or is ending). */
  get closed(): boolean {
    return this.socket.closed !== null || this.socket.ws.readyState !== WebSocket.OPEN;
  }
}
