// image.source must be a regular qcow2 file, as qemu-img sees it (issue 9: a config naming /etc/shadow with a
// matching sha256 would upload it to every host). Run for real against files made here.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { localImageFormat } from "../../host/qemuImg";
import { run } from "../../host/runner";

const dir = mkdtempSync(path.join(tmpdir(), "vmi-img-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a qcow2 file (or a link to one) passes; text, a directory and a missing path are refused, each saying why", async () => {
  const q = path.join(dir, "base.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", q, "16M"], { timeoutMs: 30_000 });
  expect(await localImageFormat(q)).toEqual({ format: "qcow2" });
  const text = path.join(dir, "shadow");
  writeFileSync(text, "root:*:19000:0:99999:7:::\n");
  expect(await localImageFormat(text)).toEqual({ problem: `${text} is raw to qemu-img, not a qcow2 image` });
  expect(await localImageFormat(dir)).toEqual({ problem: `${dir} is not a regular file` });
  const link = path.join(dir, "link.qcow2");
  symlinkSync(q, link);
  expect(await localImageFormat(link)).toEqual({ format: "qcow2" });
  const devLink = path.join(dir, "dev.qcow2");
  symlinkSync("/dev/zero", devLink);
  expect(await localImageFormat(devLink)).toEqual({ problem: `${devLink} is not a regular file` });
  expect(await localImageFormat(path.join(dir, "nope"))).toEqual({ problem: `${path.join(dir, "nope")} does not exist` });
});
