// The browser reads pairing links as the Rust side writes them: the vectors
// come from transports/tests/e2e.rs (pairing_link_vectors_are_current).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";

import { parsePairingLink } from "../src/crypto/pairing-link.js";

const file = JSON.parse(readFileSync(resolve(process.cwd(), "../transports/tests/vectors/pairing-link.json"), "utf8"));
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

test("pairing links derive what the daemon derives", () => {
  assert.ok(file.cases.length >= 5);
  assert.ok(file.cases.some((c: { relay: string | null }) => c.relay), "links that name their relay");
  for (const c of file.cases) {
    const link = parsePairingLink(`#${c.fragment}`, "https://relay.example");
    assert.ok(link, c.fragment);
    assert.equal(link.deviceId, c.deviceId);
    assert.equal(link.relay, c.relay ?? "https://relay.example");
    assert.equal(toHex(link.secret), c.psk);
    assert.equal(link.token, c.token);
    assert.equal(link.tokenId, c.tokenId);
  }
});

test("anything else is no link", () => {
  // The last: kind 3 (a text device id) with bytes that are not UTF-8.
  const notUtf8 = Buffer.from([3, ...new Array(16).fill(1), 0xff, 0xfe]).toString("base64url");
  const seed = new Array(16).fill(5);
  const withRelay = (kind: number, ...rest: (number[] | string)[]) =>
    "#" + Buffer.from([kind, ...seed, ...rest.flatMap((r) => (typeof r === "string" ? [...Buffer.from(r)] : r))]).toString("base64url");
  const relayless = [
    withRelay(4, new Array(16).fill(1), "javascript:alert(1)"),
    withRelay(4, new Array(16).fill(1)),
    withRelay(4, new Array(16).fill(1), "https:///x"),
    withRelay(5, [9], "device"),
    withRelay(5, [0], "https://r"),
    withRelay(5, [1], "dftp://r"),
    withRelay(5, [1], "dhttps://a b"),
    withRelay(4, new Array(16).fill(1), "https://user:pw@relay.example.com"),
    withRelay(4, new Array(16).fill(1), "https://relay.example.com/?x"),
    withRelay(4, new Array(16).fill(1), "https://relay.example.com\\evil"),
    // A byte-order mark before the relay: Rust refuses it, and so must the app.
    withRelay(4, new Array(16).fill(1), [0xef, 0xbb, 0xbf], "https://relay.example.com"),
  ];
  for (const bad of ["", "#", "#v=1&r=x", "#!!!!", "#AgAAAA", "#Aw", `#${notUtf8}`, ...relayless]) assert.equal(parsePairingLink(bad, "https://r"), null, bad);
});
