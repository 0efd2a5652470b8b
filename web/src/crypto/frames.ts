// The daemon's framed JSON-RPC protocol inside an end-to-end channel, exactly
// as transports/src/e2e/frames.rs does it: a frame becomes sealed messages
// whose plaintext is `kind | piece` (1 JSON, 2 binary), with the high bit set
// on every piece but the last; reassembled frames are capped at 1 MiB.

import { type Channel, MAX_PLAINTEXT, NoiseError } from "./noise.js";

export const JSON_FRAME = 1;
export const BINARY_FRAME = 2;
const MORE = 0x80;
const MAX_FRAME = 1024 * 1024;

export interface Frame {
  kind: typeof JSON_FRAME | typeof BINARY_FRAME;
  payload: Uint8Array;
}

export function sealFrame(channel: Channel, frame: Frame): Uint8Array[] {
  const pieceLength = MAX_PLAINTEXT - 1;
  const count = Math.max(1, Math.ceil(frame.payload.length / pieceLength));
  const sealed: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const piece = frame.payload.subarray(index * pieceLength, (index + 1) * pieceLength);
    const plaintext = new Uint8Array(piece.length + 1);
    plaintext[0] = index + 1 < count ? frame.kind | MORE : frame.kind;
    plaintext.set(piece, 1);
    sealed.push(channel.seal(plaintext));
  }
  return sealed;
}

export class Reassembler {
  private kind: number | null = null;
  private pieces: Uint8Array[] = [];
  private length = 0;

  /** Adds one opened plaintext; a frame once its last piece arrived. */
  push(plaintext: Uint8Array): Frame | null {
    const head = plaintext[0];
    if (head === undefined) throw new NoiseError("an empty end-to-end message");
    const kind = head & ~MORE;
    if (kind !== JSON_FRAME && kind !== BINARY_FRAME) throw new NoiseError(`unknown frame kind ${kind}`);
    if (this.kind !== null && this.kind !== kind) throw new NoiseError("a frame changed kind midway");
    const piece = plaintext.subarray(1);
    if (this.length + piece.length > MAX_FRAME) throw new NoiseError("a frame over the 1 MiB limit");
    this.kind = kind;
    this.pieces.push(piece.slice());
    this.length += piece.length;
    if (head & MORE) return null;
    const payload = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.pieces) {
      payload.set(part, at);
      at += part.length;
    }
    this.kind = null;
    this.pieces = [];
    this.length = 0;
    return { kind, payload };
  }
}
