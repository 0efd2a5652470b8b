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
  assert.ok(file.cases.length >= 3);
  for (const c of file.cases) {
    const link = parsePairingLink(`#${c.fragment}`, "https://relay.example");
    assert.ok(link, c.fragment);
    assert.equal(link.deviceId, c.deviceId);
    assert.equal(link.relay, "https://relay.example");
    assert.equal(toHex(link.secret), c.psk);
    assert.equal(link.token, c.token);
    assert.equal(link.tokenId, c.tokenId);
  }
});

test("anything else is no link", () => {
  // The last: kind 3 (a text device id) with bytes that are not UTF-8.
  const notUtf8 = Buffer.from([3, ...new Array(16).fill(1), 0xff, 0xfe]).toString("base64url");
  for (const bad of ["", "#", "#v=1&r=x", "#!!!!", "#AgAAAA", "#Aw", `#${notUtf8}`]) assert.equal(parsePairingLink(bad, "https://r"), null, bad);
});
