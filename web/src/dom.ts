// Building the page. Only textContent ever carries a laptop's strings: no
// string is ever parsed as HTML (the original app had stored XSS that way).

export const main = document.getElementById("app") as HTMLElement;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** Replaces the screen; the CSS tells the session screen from the pages around it. */
export function show(...nodes: Node[]): void {
  const session = nodes[0] instanceof HTMLElement && nodes[0].classList.contains("session-screen");
  main.dataset.screen = session ? "session" : "page";
  main.replaceChildren(...nodes);
}

export function status(message: string, role: "status" | "alert" = "status"): HTMLElement {
  return el("p", { className: role === "alert" ? "error" : "status", role } as Partial<HTMLParagraphElement>, message);
}

/** A key-bar style button that leaves the focus (and the phone keyboard) where it is. */
export function key(label: string, name: string, onPress: () => void): HTMLButtonElement {
  const button = el("button", { type: "button", className: "key" }, label);
  button.setAttribute("aria-label", name);
  button.addEventListener("pointerdown", (event) => event.preventDefault());
  button.onclick = onPress;
  return button;
}
