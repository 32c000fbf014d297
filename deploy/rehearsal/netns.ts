import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";

/**
 * A private network for the rehearsal: a bridge in the host's namespace (its address .1 reachable
 * from every host) and one network namespace per Compose service, each with a veth on the bridge,
 * its own address, and an /etc/hosts (bind-mounted by `ip netns exec` from /etc/netns/NAME/hosts)
 * naming every service and alias as Compose's DNS would.
 */
export interface Host {
  service: string;
  ns: string;
  ip: string;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: "pipe" });

export class Network {
  readonly hosts = new Map<string, Host>();
  readonly bridge: string;
  readonly prefix: string;
  private readonly id: string;

  constructor() {
    this.id = (process.pid % 100_000).toString(36);
    this.bridge = `chbr${this.id}`;
    // 10.(200-249).(0-255): a /24 of its own per run, so rehearsals on one machine do not meet.
    this.prefix = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 256}`;
  }

  get gateway(): string {
    return `${this.prefix}.1`;
  }

  create(services: readonly string[], aliases: Record<string, string[]>): void {
    ip("link", "add", this.bridge, "type", "bridge");
    ip("addr", "add", `${this.gateway}/24`, "dev", this.bridge);
    ip("link", "set", this.bridge, "up");
    services.forEach((service, i) => {
      const host = { service, ns: `chat${this.id}-${i}`, ip: `${this.prefix}.${10 + i}` };
      const [outer, inner] = [`chv${this.id}o${i}`, `chv${this.id}i${i}`];
      ip("netns", "add", host.ns);
      ip("link", "add", outer, "type", "veth", "peer", "name", inner);
      ip("link", "set", outer, "master", this.bridge, "up");
      ip("link", "set", inner, "netns", host.ns);
      ip("-n", host.ns, "addr", "add", `${host.ip}/24`, "dev", inner);
      ip("-n", host.ns, "link", "set", inner, "up");
      ip("-n", host.ns, "link", "set", "lo", "up");
      ip("-n", host.ns, "route", "add", "default", "via", this.gateway);
      this.hosts.set(service, host);
    });
    const lines = ["127.0.0.1 localhost", `${this.gateway} host-machine`];
    for (const h of this.hosts.values()) {
      lines.push(`${h.ip} ${[h.service, ...(aliases[h.service] ?? [])].join(" ")}`);
    }
    for (const h of this.hosts.values()) {
      mkdirSync(`/etc/netns/${h.ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${h.ns}/hosts`, `${lines.join("\n")}\n`);
    }
  }

  host(service: string): Host {
    const h = this.hosts.get(service);
    if (!h) throw new Error(`no host for ${service}`);
    return h;
  }

  /** Removes every namespace, link and hosts file it made; safe to call twice. */
  destroy(): void {
    for (const h of this.hosts.values()) {
      try {
        ip("netns", "del", h.ns);
      } catch {}
      rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true });
    }
    try {
      ip("link", "del", this.bridge);
    } catch {}
  }
}
