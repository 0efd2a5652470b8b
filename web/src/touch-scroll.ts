// Scrolling the terminal with a finger. xterm.js scrolls with a wheel or a
// scrollbar, not a swipe, so the app does it: the view follows the finger line
// by line and keeps gliding after a quick swipe, slowing down as a native list
// does. Full-screen programs (the alternate screen: vim, less, htop) have no
// history to scroll; there a swipe sends arrow keys, one per line of travel.

import type { Terminal } from "@xterm/xterm";

/** Velocity kept per 16 ms of glide. */
const FRICTION = 0.95;
/** Below this speed (px/ms) the glide stops. */
const STOP_SPEED = 0.03;

export function touchScroll(term: Terminal, surface: HTMLElement, sendKeys: (data: string) => void): void {
  let lastY = 0;
  let lastTime = 0;
  let velocity = 0;
  let pending = 0;
  let glide = 0;
  const lineHeight = () => Math.max(1, surface.clientHeight / Math.max(1, term.rows));
  const alternate = () => term.buffer.active.type === "alternate";
  /** Moves the content by `pixels` (positive: the finger went down, towards older lines). */
  const move = (pixels: number) => {
    pending += pixels;
    const lines = Math.trunc(pending / lineHeight());
    if (lines === 0) return;
    pending -= lines * lineHeight();
    if (alternate()) {
      const key = lines > 0 ? "A" : "B";
      const arrow = term.modes.applicationCursorKeysMode ? `\x1bO${key}` : `\x1b[${key}`;
      sendKeys(arrow.repeat(Math.abs(lines)));
    } else term.scrollLines(-lines);
  };
  const stopGlide = () => {
    cancelAnimationFrame(glide);
    glide = 0;
  };
  surface.addEventListener(
    "touchstart",
    (event) => {
      stopGlide();
      const touch = event.touches[0];
      if (event.touches.length !== 1 || !touch) return;
      lastY = touch.clientY;
      lastTime = event.timeStamp;
      velocity = 0;
      pending = 0;
    },
    { passive: true },
  );
  surface.addEventListener(
    "touchmove",
    (event) => {
      const touch = event.touches[0];
      if (event.touches.length !== 1 || !touch) return;
      // The page itself must not bounce or reload under the finger.
      event.preventDefault();
      const dy = touch.clientY - lastY;
      const dt = Math.max(1, event.timeStamp - lastTime);
      velocity = 0.8 * (dy / dt) + 0.2 * velocity;
      lastY = touch.clientY;
      lastTime = event.timeStamp;
      move(dy);
    },
    { passive: false },
  );
  surface.addEventListener("touchend", (event) => {
    // A finger that stopped before lifting does not glide; nor does the alternate screen.
    if (event.timeStamp - lastTime > 100 || alternate() || Math.abs(velocity) < STOP_SPEED) return;
    let previous = performance.now();
    const step = (now: number) => {
      const dt = Math.min(64, now - previous);
      previous = now;
      move(velocity * dt);
      velocity *= FRICTION ** (dt / 16);
      glide = Math.abs(velocity) < STOP_SPEED ? 0 : requestAnimationFrame(step);
    };
    glide = requestAnimationFrame(step);
  });
}
