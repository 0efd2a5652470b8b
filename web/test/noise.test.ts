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
  Handshake,
  NoiseError,
  PAIRING_PATTERN,
  connectionPrologue,
  fingerprint,
  keyPair,
  pairingPrologue,
} from "../src/crypto/noise.js";

// npm runs tests from web/; the vectors live with the Rust tests that make and check them.
const vectors = (name: string) =>
  JSON.parse(readFileSync(resolve(process.cwd(), "../transports/tests/vectors", name), "utf8"));
const hex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const utf8 = new TextEncoder();

test("the published Cacophony vectors pass", () => {
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
    let channels: [ReturnType<Handshake["channel"]>, ReturnType<Handshake["channel"]>] | null = null;
    v.messages.forEach((message: { payload: string; ciphertext: string }, i: number) => {
      const initiatorSends = i % 2 === 0;
      const payload = hex(message.payload);
      let sent: Uint8Array;
      let opened: Uint8Array;
      if (!channels) {
        const [s, r] = initiatorSends ? [init, resp] : [resp, init];
        sent = s.write(payload);
        opened = r.read(sent);
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
    });
  }
});

test("loopsy's own vectors (real prologues, the phone as initiator) pass", () => {
  const file = vectors("loopsy-e2e.json");
  for (const c of file.cases) {
    const psk = c.psk ? { psk: hex(c.psk) } : {};
    const phone = new Handshake({
      pattern: c.protocol_name,
      initiator: true,
      prologue: hex(c.prologue),
      localStatic: keyPair(hex(c.phone_static_private)),
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
    let channels: ReturnType<Handshake["channel"]>[] | null = null;
    c.messages.forEach((m: { payload: string; ciphertext: string }, i: number) => {
      if (!channels) {
        const [s, r] = i % 2 === 0 ? [phone, daemon] : [daemon, phone];
        const sent = s.write(hex(m.payload));
        assert.equal(toHex(sent), m.ciphertext, `${c.protocol_name} handshake message ${i}`);
        assert.equal(toHex(r.read(sent)), m.payload);
        if (phone.finished && daemon.finished) {
          assert.equal(toHex(phone.hash), c.handshake_hash);
          assert.equal(phone.remoteStatic && toHex(phone.remoteStatic), c.daemon_static_public);
          channels = [phone.channel(), daemon.channel()];
        }
      } else {
        const fromPhone = (m as { from?: string }).from === "phone";
        const [s, r] = fromPhone ? [channels[0]!, channels[1]!] : [channels[1]!, channels[0]!];
        const sent = s.seal(hex(m.payload));
        assert.equal(toHex(sent), m.ciphertext, `${c.protocol_name} transport message ${i}`);
        assert.equal(toHex(r.open(sent)), m.payload);
      }
    });
  }
  assert.equal(fingerprint(hex(file.cases[0].daemon_static_public)), file.fingerprint_of_daemon_static_public);
});

function connected() {
  const phoneKey = keyPair();
  const daemonKey = keyPair();
  const prologue = connectionPrologue("device", "phone");
  const phone = new Handshake({ pattern: CONNECTION_PATTERN, initiator: true, prologue, localStatic: phoneKey, remoteStatic: daemonKey.publicKey });
  const daemon = new Handshake({ pattern: CONNECTION_PATTERN, initiator: false, prologue, localStatic: daemonKey, remoteStatic: phoneKey.publicKey });
  daemon.read(phone.write());
  phone.read(daemon.write());
  return [phone.channel(), daemon.channel()] as const;
}

test("a wrong pairing secret fails the handshake", () => {
  const prologue = pairingPrologue("device", "token");
  const phone = new Handshake({ pattern: PAIRING_PATTERN, initiator: true, prologue, localStatic: keyPair(), psk: new Uint8Array(32).fill(7) });
  const daemon = new Handshake({ pattern: PAIRING_PATTERN, initiator: false, prologue, localStatic: keyPair(), psk: new Uint8Array(32).fill(8) });
  daemon.read(phone.write());
  phone.read(daemon.write());
  assert.throws(() => daemon.read(phone.write()), NoiseError);
});

test("an altered, replayed or reordered frame breaks the channel for good", () => {
  for (const attack of ["flip", "replay", "reorder"] as const) {
    const [phone, daemon] = connected();
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

test("frames of any size cross the channel in pieces and come back whole", () => {
  const [phone, daemon] = connected();
  const big = Uint8Array.from({ length: 200_000 }, (_, i) => i % 251);
  const sealed = sealFrame(phone, { kind: 2, payload: big });
  assert.equal(sealed.length, 4);
  const reassembler = new Reassembler();
  const frames = sealed.map((m) => reassembler.push(daemon.open(m))).filter(Boolean);
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0]!.payload, big);
  assert.equal(frames[0]!.kind, 2);
});
