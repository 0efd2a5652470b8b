// The laptops this phone paired with, kept in IndexedDB (never sent anywhere).

import type { Laptop } from "./channel.js";

const DB = "loopsy";
const STORE = "laptops";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "deviceId" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  return new Promise((resolve, reject) => {
    const request = work(db.transaction(STORE, mode).objectStore(STORE));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** The laptop a new pairing would silently overwrite, if any: one kept under
 * the same device id but through another relay or with another key. A link
 * may name any relay, and a device id is no secret (every QR code shows it),
 * so a hostile relay could otherwise take a stored laptop's place. */
export function wouldReplace(kept: Laptop[], paired: Laptop): Laptop | null {
  const same = kept.find((l) => l.deviceId === paired.deviceId);
  return same && (same.relay !== paired.relay || same.daemonKey !== paired.daemonKey) ? same : null;
}

export const laptops = (): Promise<Laptop[]> => run("readonly", (s) => s.getAll() as IDBRequest<Laptop[]>);
export const saveLaptop = (laptop: Laptop): Promise<IDBValidKey> => run("readwrite", (s) => s.put(laptop));
export const forgetLaptop = (deviceId: string): Promise<undefined> => run("readwrite", (s) => s.delete(deviceId));
