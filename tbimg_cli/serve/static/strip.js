// Every step of one run as a strip of thumbnails, of which only those scrolled into view exist: a series
// of 10,000 steps makes a few dozen <img> elements and fetches their images, never 10,000.

const THUMB = 56; // CSS pixels per thumbnail, its margin included
const SETTLE_MS = 250; // thumbnails load once the strip has been still this long: a drag fetches none

export class Strip {
  constructor(element, onPick) {
    this.element = element;
    this.onPick = onPick;
    this.steps = [];
    this.url = () => "";
    this.current = null;
    this.track = document.createElement("div");
    this.track.className = "track";
    element.appendChild(this.track);
    this.timer = 0;
    element.addEventListener("scroll", () => this.draw(), { passive: true });
  }

  // steps: the run's steps in order; url(step): its first sample's address; current: the step shown.
  show(steps, url, current) {
    const changed = steps !== this.steps;
    this.steps = steps;
    this.url = url;
    this.current = current;
    this.track.style.width = `${steps.length * THUMB}px`;
    if (changed) this.track.replaceChildren();
    const at = steps.indexOf(current);
    const left = this.element.scrollLeft;
    const right = left + this.element.clientWidth;
    if (at >= 0 && (at * THUMB < left || (at + 1) * THUMB > right)) {
      this.element.scrollLeft = Math.max(0, at * THUMB - this.element.clientWidth / 2); // draws on its scroll event
    }
    this.draw();
  }

  draw() {
    const first = Math.max(0, Math.floor(this.element.scrollLeft / THUMB) - 2);
    const last = Math.min(this.steps.length, Math.ceil((this.element.scrollLeft + this.element.clientWidth) / THUMB) + 2);
    const keep = new Set();
    for (let i = first; i < last; i++) keep.add(this.steps[i]);
    for (const item of [...this.track.children]) if (!keep.has(Number(item.dataset.step))) item.remove();
    const present = new Set([...this.track.children].map((item) => Number(item.dataset.step)));
    for (let i = first; i < last; i++) {
      const step = this.steps[i];
      if (!present.has(step)) {
        const item = document.createElement("button");
        item.className = "thumb";
        item.dataset.step = String(step);
        item.style.left = `${i * THUMB}px`;
        item.title = `step ${step}`;
        const picture = document.createElement("img");
        picture.dataset.src = this.url(step);
        picture.alt = `step ${step}`;
        const label = document.createElement("span");
        label.textContent = String(step);
        item.append(picture, label);
        item.onclick = () => this.onPick(step);
        this.track.appendChild(item);
      }
    }
    for (const item of this.track.children) item.classList.toggle("current", Number(item.dataset.step) === this.current);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      for (const picture of this.track.querySelectorAll("img[data-src]")) {
        picture.src = picture.dataset.src;
        delete picture.dataset.src;
      }
    }, SETTLE_MS);
  }
}
