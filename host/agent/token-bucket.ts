/**
 * A token bucket shared by every download of a host: callers take the bytes they just received and wait while the
 * bucket is in debt, so the host's total download rate stays at the cap (reads keep their latency). Rate 0 = no cap.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  /** bytes per second; 0 = unlimited */
  readonly rate: number;
  /** the most a quiet period can save up (bytes) */
  readonly burst: number;

  constructor(bytesPerSecond: number, burstSeconds = 0.25) {
    this.rate = Math.max(0, bytesPerSecond);
    this.burst = Math.max(64 * 1024, this.rate * burstSeconds);
    this.tokens = this.burst;
  }

  /** `--max-download-mbps N` is megabits per second (network convention): N × 125 000 bytes/s. */
  static fromMbps(mbps: number | undefined): TokenBucket {
    return new TokenBucket(mbps && mbps > 0 ? mbps * 125_000 : 0);
  }

  /** Account for `n` bytes; resolves when the caller may go on (immediately unless the bucket is in debt). */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.rate === 0) return;
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    if (this.tokens >= 0) return;
    const waitMs = (-this.tokens / this.rate) * 1000;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, waitMs);
      function done() {
        clearTimeout(t);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
