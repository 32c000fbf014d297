import { type ChildProcess, spawn } from "node:child_process";

/** A process started inside a network namespace (`ip netns exec`), optionally as another user. */
export class NsProcess {
  private readonly child: ChildProcess;
  private output = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    ns: string,
    command: string[],
    options: { env: Record<string, string>; cwd?: string; user?: string },
  ) {
    const as = options.user ? ["runuser", "-u", options.user, "--"] : [];
    this.child = spawn("ip", ["netns", "exec", ns, ...as, ...command], {
      env: options.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): string {
    return this.output;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
