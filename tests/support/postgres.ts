// A real PostgreSQL (Debian's package) for the tests of Pulumi's postgres:// state backend: its own data directory
// and a free port on loopback, password login, started and stopped by the test, nothing left behind. The server
// refuses to run as root: every server-side program runs as the package's `postgres` user.
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import * as path from "node:path";
import { run } from "../../host/runner";

export interface Postgres {
  /** postgres://user:password@127.0.0.1:port/db: hand it over in the environment (PULUMI_BACKEND_URL), never argv. */
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

const binDir = () => {
  const versions = readdirSync("/usr/lib/postgresql").filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)).sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error("PostgreSQL is not installed (scripts/host-packages.sh installs Debian's postgresql)");
  return `/usr/lib/postgresql/${versions[0]}/bin`;
};

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const a = s.address();
    s.close(() => (a && typeof a === "object" ? resolve(a.port) : reject(new Error("no port"))));
  });
});

const asPostgres = (file: string, args: string[], env: Record<string, string> = {}) =>
  run("runuser", ["-u", "postgres", "--", file, ...args], { timeoutMs: 120_000, env });

export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  const dir = mkdtempSync("/var/tmp/vm-infra-pg-");
  const data = path.join(dir, "data");
  const password = randomBytes(12).toString("hex");
  writeFileSync(path.join(dir, "pw"), `${password}\n`, { mode: 0o600 });
  await run("chown", ["-R", "postgres:postgres", "--", dir], { timeoutMs: 10_000 });
  await asPostgres(`${bin}/initdb`, ["-D", data, "-U", "vmi", "-A", "scram-sha-256", `--pwfile=${path.join(dir, "pw")}`]);
  rmSync(path.join(dir, "pw"));
  const port = await freePort();
  // settings in the server's own file, not on a command line pg_ctl hands to a shell
  appendFileSync(path.join(data, "postgresql.conf"), `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\n`);
  await asPostgres(`${bin}/pg_ctl`, ["-D", data, "-l", path.join(dir, "log"), "-w", "start"]);
  await asPostgres(`${bin}/createdb`, ["-h", "127.0.0.1", "-p", String(port), "-U", "vmi", "pulumi"], { PGPASSWORD: password });
  return {
    url: `postgres://vmi:${password}@127.0.0.1:${port}/pulumi?sslmode=disable`,
    port,
    dir,
    stop: async () => {
      await asPostgres(`${bin}/pg_ctl`, ["-D", data, "-m", "fast", "-w", "stop"]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
