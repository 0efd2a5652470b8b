// Connections opened ahead. The laptops list checks each laptop with a real
// connection; the first one to be opened is kept for a while and handed to
// the laptop's screen, so opening it does not pay for a second handshake.

import { Connection, type Laptop } from "./channel.js";

/** How long an unused connection opened ahead stays open. */
const KEPT_MS = 30_000;

const ahead = new Map<string, { connection: Promise<Connection>; timer: ReturnType<typeof setTimeout> }>();

function release(deviceId: string): void {
  const kept = ahead.get(deviceId);
  if (!kept) return;
  clearTimeout(kept.timer);
  ahead.delete(deviceId);
}

/** Opens a connection to `laptop` ahead of use (or returns the one already opening). */
export function openAhead(laptop: Laptop): Promise<Connection> {
  const kept = ahead.get(laptop.deviceId);
  if (kept) return kept.connection;
  const connection = Connection.open(laptop);
  const timer = setTimeout(() => {
    release(laptop.deviceId);
    void connection.then((c) => c.close()).catch(() => undefined);
  }, KEPT_MS);
  ahead.set(laptop.deviceId, { connection, timer });
  connection.catch(() => release(laptop.deviceId));
  return connection;
}

/** Closes the connection opened ahead to `laptop`, if any (the laptop was forgotten). */
export function dropAhead(laptop: Laptop): void {
  const kept = ahead.get(laptop.deviceId);
  release(laptop.deviceId);
  void kept?.connection.then((c) => c.close()).catch(() => undefined);
}

/** A connection to `laptop`: the one opened ahead if it is still up, else a new one. */
export async function connect(laptop: Laptop): Promise<Connection> {
  const kept = ahead.get(laptop.deviceId);
  release(laptop.deviceId);
  if (kept) {
    const connection = await kept.connection.catch(() => null);
    if (connection && !connection.closed) return connection;
  }
  return Connection.open(laptop);
}
