// The browser's Noise against the vectors the Rust side checks too: the
// published Cacophony vectors for both patterns, and loopsy's own vectors
// (real prologues, both roles), plus the failures that must break a channel.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";

import { Reassembler, sealFrame } from "../src/crypto/frames.js";
import {
  CONNECTION_PATTERN,
  type Channel,
  Handshake,
  NoiseError,
  PAIRING_PATTERN,
  connectionPrologue,
  fingerprint,
  keyPair,
  pairingPrologue,
  type StaticKey,
} from "../src/crypto/noise.js";
import { webCryptoStatic } from "../src/crypto/phone-key.js";

// npm runs tests from web/; the vectors live with the Rust tests that make and check them.
const vectors = (name: string) =>
  JSON.parse(readFileSync(resolve(process.cwd(), "../transports/tests/vectors", name), "utf8"));
const hex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const utf8 = new TextEncoder();

test("the published Cacophony vectors pass", async () => {
  const file = vectors("noise.json");
  assert.equal(file.vectors.length, 2);
  for (const v of file.vectors) {
    const side = (prefix: "init" | "resp") =>
      new Handshake({
        pattern: v.protocol_name,
        initiator: prefix === "init",
        prologue: hex(v[`${prefix}_prologue`] ?? ""),
        localStatic: keyPair(hex(v[`${prefix}_static`])),
        ...(v[`${prefix}_remote_static`] ? { remoteStatic: hex(v[`${prefix}_remote_static`]) } : {}),
        ...(v[`${prefix}_psks`] ? { psk: hex(v[`${prefix}_psks`][0]) } : {}),
        fixedEphemeral: hex(v[`${prefix}_ephemeral`]),
      });
    const init = side("init");
    const resp = side("resp");
    let channels: [Channel, Channel] | null = null;
    for (const [i, message] of (v.messages as { payload: string; ciphertext: string }[]).entries()) {
      const initiatorSends = i % 2 === 0;
      const payload = hex(message.payload);
      let sent: Uint8Array;
      let opened: Uint8Array;
      if (!channels) {
        const [s, r] = initiatorSends ? [init, resp] : [resp, init];
        sent = await s.write(payload);
        opened = await r.read(sent);
        if (init.finished && resp.finished) {
          assert.equal(toHex(init.hash), v.handshake_hash, `${v.protocol_name} handshake hash`);
          channels = [init.channel(), resp.channel()];
        }
      } else {
        const [s, r] = initiatorSends ? channels : [channels[1], channels[0]];
        sent = s.seal(payload);
        opened = r.open(sent);
      }
      assert.equal(toHex(sent), message.ciphertext, `${v.protocol_name} message ${i}`);
      assert.equal(toHex(opened), message.payload);
    }
  }
});

/** Runs loopsy's vectors with the phone's static key made by `phoneStatic`. */
async function loopsyVectors(phoneStatic: (privateKey: Uint8Array) => Promise<StaticKey>) {
  const file = vectors("loopsy-e2e.json");
  for (const c of file.cases) {
    const psk = c.psk ? { psk: hex(c.psk) } : {};
    const phone = new Handshake({
      pattern: c.protocol_name,
      initiator: true,
      prologue: hex(c.prologue),
      localStatic: await phoneStatic(hex(c.phone_static_private)),
      ...(c.protocol_name === CONNECTION_PATTERN ? { remoteStatic: hex(c.daemon_static_public) } : {}),
      ...psk,
      fixedEphemeral: hex(c.phone_ephemeral_private),
    });
    const daemon = new Handshake({
      pattern: c.protocol_name,
      initiator: false,
      prologue: hex(c.prologue),
      localStatic: keyPair(hex(c.daemon_static_private)),
      ...(c.protocol_name === CONNECTION_PATTERN ? { remoteStatic: hex(c.phone_static_public) } : {}),
      ...psk,
      fixedEphemeral: hex(c.daemon_ephemeral_private),
    });
    assert.equal(toHex(keyPair(hex(c.daemon_static_private)).publicKey), c.daemon_static_public);
    let channels: Channel[] | null = null;
    for (const [i, m] of (c.messages as { payload: string; ciphertext: string }[]).entries()) {
      if (!channels) {
        const [s, r] = i % 2 === 0 ? [phone, daemon] : [daemon, phone];
        const sent = await s.write(hex(m.payload));
        assert.equal(toHex(sent), m.ciphertext, `${c.protocol_name} handshake message ${i}`);
        assert.equal(toHex(await r.read(sent)), m.payload);
        if (phone.finished && daemon.finished) {
          assert.equal(toHex(phone.hash), c.handshake_hash);
          assert.equal(phone.remoteStatic && toHex(phone.remoteStatic), c.daemon_static_public);
          channels = [phone.channel(), daemon.channel()];
        }
      } else {
        const fromPhone = (m as { from?: string }).from === "phone";
        const [s, r]: Channel[] = fromPhone ? [channels[0]!, channels[1]!] : [channels[1]!, channels[0]!];
        const sent: Uint8Array = s!.seal(hex(m.payload));
        assert.equal(toHex(sent), m.ciphertext, `${c.protocol_name} transport message ${i}`);
        assert.equal(toHex(r!.open(sent)), m.payload);
      }
    }
  }
  assert.equal(fingerprint(hex(file.cases[0].daemon_static_public)), file.fingerprint_of_daemon_static_public);
}

test("loopsy's own vectors (real prologues, the phone as initiator) pass", () => loopsyVectors(async (key) => keyPair(key)));

test("the same vectors pass with the phone's key held non-extractable by WebCrypto", () =>
  loopsyVectors(async (key) => {
    // PKCS#8 wrapping of a raw X25519 private key (RFC 8410).
    const pkcs8 = new Uint8Array([...hex("302e020100300506032b656e04220420"), ...key]);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, ["deriveBits"]);
    assert.equal(privateKey.extractable, false);
    return webCryptoStatic(privateKey, keyPair(key).publicKey);
  }));

async function connected() {
  const phoneKey = keyPair();
  const daemonKey = keyPair();
  const prologue = connectionPrologue("device", "phone");
  const phone = new Handshake({ pattern: CONNECTION_PATTERN, initiator: true, prologue, localStatic: phoneKey, remoteStatic: daemonKey.publicKey });
  const daemon = new Handshake({ pattern: CONNECTION_PATTERN, initiator: false, prologue, localStatic: daemonKey, remoteStatic: phoneKey.publicKey });
  await daemon.read(await phone.write());
  await phone.read(await daemon.write());
  return [phone.channel(), daemon.channel()] as const;
}

test("a wrong pairing secret fails the handshake", async () => {
  const prologue = pairingPrologue("device", "token");
  const phone = new Handshake({ pattern: PAIRING_PATTERN, initiator: true, prologue, localStatic: keyPair(), psk: new Uint8Array(32).fill(7) });
  const daemon = new Handshake({ pattern: PAIRING_PATTERN, initiator: false, prologue, localStatic: keyPair(), psk: new Uint8Array(32).fill(8) });
  await daemon.read(await phone.write());
  await phone.read(await daemon.write());
  await assert.rejects(async () => daemon.read(await phone.write()), NoiseError);
});

test("an altered, replayed or reordered frame breaks the channel for good", async () => {
  for (const attack of ["flip", "replay", "reorder"] as const) {
    const [phone, daemon] = await connected();
    const frames = [0, 1, 2].map((i) => phone.seal(utf8.encode(`frame ${i}`)));
    const delivered =
      attack === "flip"
        ? [frames[0]!, Uint8Array.from(frames[1]!, (b, i) => (i === 3 ? b ^ 1 : b)), frames[2]!]
        : attack === "replay"
          ? [frames[0]!, frames[0]!, frames[1]!]
          : [frames[1]!, frames[0]!, frames[2]!];
    const results = delivered.map((f) => {
      try {
        return daemon.open(f);
      } catch {
        return null;
      }
    });
    assert.ok(results.includes(null), attack);
    assert.equal(results.slice(results.indexOf(null)).filter(Boolean).length, 0, `${attack}: nothing after the failure`);
  }
});

test("frames of any size cross the channel in pieces and come back whole", async () => {
  const [phone, daemon] = await connected();
  const big = Uint8Array.from({ length: 200_000 }, (_, i) => i % 251);
  const sealed = sealFrame(phone, { kind: 2, payload: big });
  assert.equal(sealed.length, 4);
  const reassembler = new Reassembler();
  const frames = sealed.map((m) => reassembler.push(daemon.open(m))).filter(Boolean);
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0]!.payload, big);
  assert.equal(frames[0]!.kind, 2);
});
