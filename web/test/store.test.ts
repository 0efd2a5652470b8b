// A pairing never silently takes the place of a stored laptop (web/src/store.ts).

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Laptop } from "../src/channel.js";
import { wouldReplace } from "../src/store.js";

const laptop = (relay: string, daemonKey: string): Laptop => ({
  deviceId: "3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e",
  relay,
  phoneId: "p",
  phoneSecret: "s",
  daemonKey,
  name: "work laptop",
  fingerprint: "f",
  phoneKey: { kind: "raw", privateKey: "00" },
  pairedAt: 0,
});

test("a link through another relay, or with another key, for a kept device id is refused", () => {
  const kept = [laptop("https://relay.example.com", "aa")];
  assert.equal(wouldReplace(kept, laptop("https://evil.example", "bb")), kept[0]);
  assert.equal(wouldReplace(kept, laptop("https://relay.example.com", "bb")), kept[0]);
  assert.equal(wouldReplace(kept, laptop("https://evil.example", "aa")), kept[0]);
});

test("pairing the same laptop again, or another one, is fine", () => {
  const kept = [laptop("https://relay.example.com", "aa")];
  assert.equal(wouldReplace(kept, laptop("https://relay.example.com", "aa")), null);
  assert.equal(wouldReplace([], laptop("https://evil.example", "bb")), null);
});
